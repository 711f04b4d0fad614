"""The Gradio app's tabs, one module each holding its layout and handlers; `app.py` puts them in order.

`shared` holds what several tabs use: the one inference queue group, uploads, downloads and error messages.
"""
