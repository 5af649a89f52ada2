"""Screenshots for docs/BROWSER_CHECK.md: headless Chromium driven over the DevTools protocol.

``chromium --screenshot`` alone cannot click or scroll, and both pages need it: VisualDL shows the
``train`` group of tags collapsed, and JupyterLab scrolls a notebook inside its own panel. Here
``visualdl`` expands the ``train`` group; ``notebook`` waits for the notebook, hides the file browser
and the "Jupyter news" pop-up, reports whether JupyterLab marked the notebook modified, and grows the
window until the last cell shows, so one picture holds the whole notebook. Needs ``chromium`` on PATH
and ``websocket-client`` (a dependency of jupyter_server).

    python docs/browser_check.py visualdl http://127.0.0.1:8040/app/scalar vdl.png
    python docs/browser_check.py notebook http://127.0.0.1:8050/lab/tree/notebooks/01_dataset_split.ipynb nb.png
"""
import argparse
import base64
import json
import signal
import subprocess
import tempfile
import time
import urllib.request

import websocket

# VisualDL opens with only its first group of tags (eval) expanded.
EXPAND_TRAIN = """(() => {
  const header = [...document.querySelectorAll('*')]
    .filter(e => e.children.length === 0 && e.textContent.trim() === 'train');
  header.forEach(e => e.click());
  return 'clicked ' + header.length + ' header(s) named train';
})()"""

# Needs `jupyter lab --LabApp.expose_app_in_browser=True` for window.jupyterapp.
PREPARE_NOTEBOOK = """(async () => {
  const app = window.jupyterapp;
  if (!app) return 'no window.jupyterapp: start jupyter lab with --LabApp.expose_app_in_browser=True';
  if (!app.shell.leftCollapsed) await app.commands.execute('application:toggle-left-area');
  [...document.querySelectorAll('button')].filter(b => b.textContent.trim() === 'No').forEach(b => b.click());
  const panel = [...app.shell.widgets('main')].find(w => w.context && w.context.path.endsWith('.ipynb'));
  return panel.context.path + ': ' + panel.content.widgets.length + ' cells, modified on open: '
    + panel.context.model.dirty;
})()"""

# How far the last cell reaches below the notebook's scrolling panel.
CELLS_BELOW = """(() => {
  const panel = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
  const cells = panel.querySelectorAll('.jp-Cell');
  return Math.max(0, Math.ceil(cells[cells.length - 1].getBoundingClientRect().bottom
                               - panel.getBoundingClientRect().bottom + 40));
})()"""


class Page:
    """One headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, width: int, height: int, port: int):
        self.width, self.height = width, height
        self.profile = tempfile.TemporaryDirectory(prefix="chromium-")
        self.proc = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--lang=en-US", "--hide-scrollbars",
             f"--window-size={width},{height}", f"--remote-debugging-port={port}", "--remote-allow-origins=*",
             f"--user-data-dir={self.profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(100):
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
                page = next(t for t in targets if t["type"] == "page")
                break
            except (OSError, StopIteration, ValueError):
                time.sleep(0.3)
        else:
            self.close()
            raise RuntimeError(f"chromium did not open its DevTools port {port}")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=120)
        self.next_id = 0
        self.call("Page.enable")
        self.resize(height)

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"].get("exception", {}).get("description", result))
        return result["result"].get("value", 0)  # -0 comes back without a value

    def resize(self, height: int):
        self.height = height
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def screenshot(self, path: str):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()
        self.profile.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", choices=["visualdl", "notebook"])
    parser.add_argument("url")
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--wait", type=float, default=25, help="seconds for the page to load (default: 25)")
    parser.add_argument("--port", type=int, default=9333, help="DevTools port (default: 9333)")
    args = parser.parse_args()
    page = Page(args.width, args.height, args.port)
    try:
        page.call("Page.navigate", url=args.url)
        time.sleep(args.wait)
        if args.page == "visualdl":
            print(page.evaluate(EXPAND_TRAIN))
            time.sleep(5)
        else:
            print(page.evaluate(PREPARE_NOTEBOOK))
            time.sleep(3)
            for _ in range(4):  # cells render as they come into view: measure again after each growth
                below = page.evaluate(CELLS_BELOW)
                if not below:
                    break
                page.resize(page.height + below)
                time.sleep(5)
        page.screenshot(args.out)
        print(f"wrote {args.out} ({args.width}x{page.height})")
    finally:
        page.close()


if __name__ == "__main__":
    main()
