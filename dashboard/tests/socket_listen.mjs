// Connects one socket.io-client to CW_BASE_URL and prints every event it receives as one JSON
// line on stdout (`{"event": ..., "data": ...}`), after a `{"event": "connect"}` line. Tests
// that drive a server from another language read these lines. Ends when stdin closes, so it
// never outlives the test that started it; bounded by CW_LISTEN_SECONDS (default 300) too.
// CW_API_KEY, when set, is sent in the handshake's auth (a server with a password, or a
// network-facing one without, lets nothing else in).

import { io } from "socket.io-client";

const base = process.env.CW_BASE_URL;
if (!base) {
  console.error("CW_BASE_URL is required");
  process.exit(2);
}
const limit = Number(process.env.CW_LISTEN_SECONDS || 300) * 1000;
const apiKey = process.env.CW_API_KEY;
const s = io(base, {
  transports: ["websocket"],
  reconnectionDelay: 200,
  ...(apiKey ? { auth: { api_key: apiKey } } : {}),
});
const out = (event, data) => process.stdout.write(JSON.stringify({ event, data }) + "\n");
s.on("connect", () => out("connect", null));
s.on("connect_error", (e) => out("connect_error", String(e && e.message)));
s.onAny((event, data) => out(event, data));
const stop = () => {
  s.close();
  process.exit(0);
};
process.stdin.on("end", stop);
process.stdin.resume();
setTimeout(stop, limit);
