"""A small Apprise API server for the notify tests: the stateless `POST /notify` of
caronc/apprise-api, answered by the real `apprise` package (upstream's pin, 2.0.1).

It reads what that endpoint reads (a JSON or form body with `urls`, `body`, `title`, `type`,
`format`, and JSON `attachments` as `{filename, base64, mimetype}`), runs `apprise.Apprise` on
it, and answers as the server does: 200 when every URL was notified, 204 when apprise loaded
none of them, 424 when a notification failed, 400 for a payload it cannot use.

Started by the Rust tests on port 0: the first line on stdout is the port it listens on. It
stops when its stdin closes (the test ends) or it is killed.
"""

import base64
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import apprise
from apprise.attachment.memory import AttachMemory


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, payload):
        data = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if urllib.parse.urlsplit(self.path).path.rstrip("/") != "/notify":
            return self.reply(404, {"error": "not found"})
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            if "json" in (self.headers.get("Content-Type") or ""):
                content = json.loads(raw.decode("utf-8"))
            else:
                pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
                content = dict(pairs)
        except ValueError:
            return self.reply(400, {"error": "Invalid JSON Payload provided"})
        if not isinstance(content, dict):
            return self.reply(400, {"error": "Invalid JSON Payload provided"})
        body = content.get("body")
        notify_type = content.get("type", "info")
        body_format = content.get("format") or None
        if not body or notify_type not in apprise.NOTIFY_TYPES:
            return self.reply(400, {"error": "Payload lacks minimum requirements"})
        if body_format and body_format not in apprise.NOTIFY_FORMATS:
            return self.reply(400, {"error": "An invalid body input format was specified"})
        attach = None
        files = content.get("attach") or content.get("attachment") or content.get("attachments")
        if files:
            attach = apprise.AppriseAttachment()
            for f in files:
                attach.add(
                    AttachMemory(
                        content=base64.b64decode(f["base64"]),
                        name=f.get("filename"),
                        mimetype=f.get("mimetype"),
                    )
                )
        kwargs = {"body_format": body_format} if body_format else {}
        recursion = self.headers.get("X-Apprise-Recursion-Count")
        if recursion is not None:
            kwargs["_recursion"] = int(recursion)
        uid = (self.headers.get("X-Apprise-ID") or "").strip()
        if uid:
            kwargs["_uid"] = uid
        a = apprise.Apprise(asset=apprise.AppriseAsset(**kwargs))
        a.add(content.get("urls"))
        if not len(a):
            return self.reply(204, None)
        ok = a.notify(
            body,
            title=content.get("title", ""),
            notify_type=notify_type,
            attach=attach,
        )
        if not ok:
            return self.reply(424, {"error": "One or more notifications could not be sent"})
        return self.reply(200, {"error": None})

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
