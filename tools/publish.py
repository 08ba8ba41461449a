"""Publish the asv dashboard so that it works offline, serve it, or photograph it.

    python -m tools.publish [--config asv.conf.json] [--preview [--port N]]
                            [--screenshot PNG [--page URLFRAGMENT]]

asv 0.6.6's ``index.html`` loads jQuery, flot, bootstrap and friends from CDNs: with no
internet the dashboard only says "One or more external (JavaScript) dependencies of
airspeed velocity failed to load" (asv#669).  This runs ``asv publish`` with the asv of
the running interpreter, copies the libraries vendored in ``tools/dashboard/vendor``
into ``<html_dir>/vendor`` and points every CDN reference at that copy.  It exits 2 (one
line on stderr) if any external script or stylesheet reference is left.

``--preview`` serves the result on 127.0.0.1 only (``asv preview`` listens on every
interface) until Ctrl-C.  ``--screenshot`` renders one page (``--page``, a URL fragment
such as ``#/regressions``) with headless Chromium into a PNG.  The tests drive the same
server and browser through :func:`serving` and :func:`chromium`.
"""

import argparse
import base64
import contextlib
import functools
import hashlib
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from tools.reporting.config import load_config, read_asv_config
from tools.reporting.errors import ReportError
from tools.reporting.inputs import check_output
from tools.reporting.results import ResultsDB, refuse_unreadable

VENDOR = Path(__file__).resolve().parent / "dashboard" / "vendor"

#: Every CDN URL asv 0.6.6's index.html loads -> its copy below tools/dashboard/vendor.
CDN = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "jquery-3.3.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": "flot-0.8.3/jquery.flot.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js":
        "flot-0.8.3/jquery.flot.time.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js":
        "flot-0.8.3/jquery.flot.selection.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js":
        "flot-0.8.3/jquery.flot.categories.js",
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js":
        "flot-orderbars-1.0.0/jquery.flot.orderBars.js",
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js":
        "stupid-table-plugin-1.1.3/stupidtable.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": "blueimp-md5-2.19.0/md5.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": "bootstrap-3.1.1/bootstrap.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css":
        "bootstrap-3.1.1/bootstrap.min.css",
}

#: A <script> or <link> tag, and the URL in its src/href attribute.
TAG = re.compile(r"<(script|link)\b[^>]*>", re.I)
URL_ATTR = re.compile(r"""\b(src|href)\s*=\s*(["'])(.*?)\2""", re.I | re.S)
#: Attributes that only make sense for the CDN copy (the hash is recomputed for ours).
CDN_ATTRS = re.compile(r"""\s+(integrity|crossorigin|referrerpolicy)\s*=\s*(["']).*?\2""", re.I | re.S)
EXTERNAL = re.compile(r"^\s*(https?:)?//", re.I)
CSS_EXTERNAL = re.compile(r"""(@import\s+|url\(\s*)["']?(https?:)?//""", re.I)

#: Headless Chromium with nothing but the page: no first-run, sync, updates or QUIC,
#: and every host name but the loopback's unresolvable, so a CDN can never answer.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
                  "--virtual-time-budget=20000"]


class PublishError(Exception):
    """A one-line reason the dashboard is not self-contained (exit status 2)."""


def html_dir_of(config):
    """The absolute html_dir of an asv config (asv resolves it against the config's folder)."""
    from asv.config import Config

    return Path(config).resolve().parent / Config.load(str(config)).html_dir


def asv_publish(config, pull=True):
    """Run ``asv publish`` with the asv of this interpreter; return its exit status.

    Its output is kept and only its last line said when it fails (one line, not a traceback)."""
    proc = subprocess.run([sys.executable, "-m", "asv", "publish", "--config", str(config),
                           *([] if pull else ["--no-pull"])], capture_output=True, text=True)
    if proc.returncode != 0:
        said = [line.strip(" ·") for line in (proc.stdout + proc.stderr).splitlines() if line.strip(" ·")]
        raise PublishError(f"asv publish exited {proc.returncode}: {(said or ['no output'])[-1][:300]}")
    return 0


def check_results(config):
    """The results folder, read by the report's own reader: refuse what the report refuses
    (a missing or corrupt benchmarks.json, an unreadable results file, a machine without
    machine.json), which asv publish would drop without a word."""
    results_dir = load_config(str(config), None, None).results_dir
    db = ResultsDB(results_dir)
    for machine in db.machines_with_results:
        if not (Path(results_dir) / machine / "machine.json").is_file():
            raise ReportError(f"no machine.json in {Path(results_dir) / machine}: asv publish would show none of "
                              "its results (run `asv machine` and copy it there)")
        refuse_unreadable(db.files(machine)[1], "asv publish would leave its commit out")


def can_reach(url):
    """Whether ``git ls-remote`` reaches ``url`` (quickly: the network may be down)."""
    try:
        return subprocess.run(["git", "ls-remote", "--exit-code", url, "HEAD"], capture_output=True,
                              timeout=20, env=dict(os.environ, GIT_TERMINAL_PROMPT="0")).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def history_source(config):
    """Whether asv publish may fetch (True) or must use the mirror as it is (False); PublishError
    when stac-manager's history is out of reach (no network and no mirror in ./<project>)."""
    conf = read_asv_config(str(config))
    repo = str(getattr(conf, "repo", "") or "")
    if "://" not in repo and not repo.startswith("git@"):
        return True  # a local path: asv never fetches it
    mirror = Path(config).resolve().parent / conf.project
    if not mirror.is_dir():
        if can_reach(repo):
            return True
        raise PublishError(f"asv publish needs stac-manager's history: the network (to clone {repo} into "
                           f"{mirror}) or a mirror there (README, Offline: git clone --mirror CHECKOUT {mirror})")
    origin = subprocess.run(["git", "-C", str(mirror), "remote", "get-url", "origin"], capture_output=True,
                            text=True).stdout.strip()
    return bool(origin) and can_reach(origin)


def sri(path):
    """The subresource-integrity value of a file (sha384, as browsers recommend)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(Path(path).read_bytes()).digest()).decode()


def localize_tag(tag, html_file, html_dir):
    """``tag`` with a CDN URL pointed at ``<html_dir>/vendor`` (other tags unchanged)."""
    match = URL_ATTR.search(tag)
    if not match or match.group(3).strip() not in CDN:
        return tag
    target = html_dir / "vendor" / CDN[match.group(3).strip()]
    rel = os.path.relpath(target, html_file.parent).replace(os.sep, "/")
    quote = match.group(2)
    tag = tag[:match.start(3)] + rel + tag[match.end(3):]
    tag = CDN_ATTRS.sub("", tag)
    end = -2 if tag.endswith("/>") else -1
    return f"{tag[:end].rstrip()} integrity={quote}{sri(target)}{quote}{tag[end:]}"


def external_refs(text, css=False):
    """The external (http, https or protocol-relative) script/stylesheet references in ``text``."""
    if css:
        return [m.group(0) for m in CSS_EXTERNAL.finditer(text)]
    refs = []
    for tag in TAG.finditer(text):
        url = URL_ATTR.search(tag.group(0))
        if url and EXTERNAL.match(url.group(3)):
            refs.append(url.group(3))
    return refs


def localize(html_dir):
    """Copy the vendored libraries into ``html_dir/vendor`` and point every page at them.

    Returns the number of references rewritten; raises PublishError if an external
    script or stylesheet reference remains in any page or stylesheet.
    """
    html_dir = Path(html_dir).resolve()
    if not (html_dir / "index.html").is_file():
        raise PublishError(f"no index.html in {html_dir}: did asv publish run?")
    shutil.copytree(VENDOR, html_dir / "vendor", dirs_exist_ok=True)
    rewritten = 0
    for page in sorted(html_dir.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        new = TAG.sub(lambda m, page=page: localize_tag(m.group(0), page, html_dir), text)
        rewritten += sum(a.group(0) != b.group(0) for a, b in zip(TAG.finditer(text), TAG.finditer(new), strict=False))
        if new != text:
            page.write_text(new, encoding="utf-8")
    for path in sorted([*html_dir.rglob("*.html"), *html_dir.rglob("*.css")]):
        left = external_refs(path.read_text(encoding="utf-8", errors="replace"), css=path.suffix == ".css")
        if left:
            raise PublishError(f"external reference left in {path.relative_to(html_dir)}: {left[0]}")
    return rewritten


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, no per-request log lines."""

    def log_message(self, format, *args):
        pass


def make_server(html_dir, port=0, quiet=True):
    """An HTTP server for ``html_dir`` bound to 127.0.0.1 only (``port`` 0: any free port)."""
    handler = QuietHandler if quiet else http.server.SimpleHTTPRequestHandler
    return http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                           functools.partial(handler, directory=str(html_dir)))


@contextlib.contextmanager
def serving(html_dir, port=0):
    """Serve ``html_dir`` on 127.0.0.1 in a background thread; yield its base URL."""
    server = make_server(html_dir, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def find_chromium():
    """The Chromium executable on PATH (Debian's ``chromium``), or None."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def chromium(url, screenshot=None, window="1400,1000", timeout=180):
    """Open ``url`` in a fresh headless Chromium; return the DOM it dumps (or write a PNG).

    With ``screenshot`` (a path) the page is rendered into that PNG instead and "" is
    returned.  Raises RuntimeError when Chromium is missing or fails.
    """
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("chromium is not on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        args = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        if screenshot:
            args += [f"--screenshot={Path(screenshot).resolve()}", f"--window-size={window}"]
        else:
            args.append("--dump-dom")
        proc = subprocess.run([*args, url], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    if proc.returncode != 0 or (screenshot and not Path(screenshot).is_file()):
        tail = proc.stderr.strip().splitlines()[-5:]
        raise RuntimeError(f"chromium exited {proc.returncode} on {url}: " + " | ".join(tail))
    return "" if screenshot else proc.stdout


def preview(html_dir, server):
    """Serve ``html_dir`` with ``server`` (bound before publishing) until Ctrl-C."""
    print(f"Serving {html_dir} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class _Parser(argparse.ArgumentParser):
    """Usage errors are bad input too: one line (``publish.py: error: ...``), exit 2."""

    def error(self, message):
        self.exit(2, f"publish.py: error: {message} (see --help)\n")


def port_number(text):
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535 (got {port})")
    return port


def check_args(parser, args):
    """Every argument, before asv publish runs."""
    if args.port is not None and not args.preview:
        parser.error("--port applies to --preview only")
    if args.page and not args.screenshot:
        parser.error("--page applies to --screenshot only")
    if args.screenshot:
        try:
            check_output(args.screenshot, "--screenshot")
        except ReportError as exc:
            parser.error(str(exc))
        if find_chromium() is None:
            parser.error("--screenshot needs chromium on PATH (Debian: apt-get install chromium)")
    if not Path(args.config).is_file():
        parser.exit(2, f"publish.py: error: no asv config at {args.config}\n")


def parse_args(argv):
    parser = _Parser(description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="asv.conf.json", help="asv config (default: asv.conf.json)")
    parser.add_argument("--preview", action="store_true", help="serve the dashboard on 127.0.0.1 until Ctrl-C")
    parser.add_argument("--port", type=port_number, default=None, help="port for --preview (default 8080; 0: any)")
    parser.add_argument("--screenshot", metavar="PNG", help="render a page with headless Chromium into PNG")
    parser.add_argument("--page", default="", metavar="URLFRAGMENT",
                        help="page for --screenshot, e.g. '#/regressions' (default: the grid)")
    args = parser.parse_args(argv)
    check_args(parser, args)
    return args


def bind(html_dir, port):
    """The preview's server, bound before any work: a port in use is bad input."""
    try:
        return make_server(html_dir, port, quiet=False)
    except OSError as exc:
        raise PublishError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror}") from None


def publish(args, html_dir, server):
    """asv publish after every check, then the vendoring, the screenshot, the preview."""
    check_results(args.config)
    pull = history_source(args.config)
    if not pull:
        print("publish.py: stac-manager's origin is out of reach: the dashboard uses the mirror's history as it is",
              file=sys.stderr)
    asv_publish(args.config, pull)
    count = localize(html_dir)
    print(f"publish.py: {html_dir} is self-contained ({count} CDN references now point at vendor/)")
    if args.screenshot:
        with serving(html_dir) as url:
            try:
                chromium(url + args.page, screenshot=args.screenshot)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                raise PublishError(str(exc).splitlines()[0]) from None
        print(f"publish.py: wrote {args.screenshot}")
    if server is not None:
        preview(html_dir, server)


def main(argv=None):
    args = parse_args(argv)
    server = None
    try:
        try:
            html_dir = html_dir_of(args.config)
        except Exception as exc:  # asv's UserError, JSON errors: one line, not a traceback
            raise PublishError(f"cannot read {args.config}: {str(exc).strip().splitlines()[0]}") from None
        server = bind(html_dir, 8080 if args.port is None else args.port) if args.preview else None
        publish(args, html_dir, server)
    except (PublishError, ReportError) as exc:
        print(f"publish.py: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
