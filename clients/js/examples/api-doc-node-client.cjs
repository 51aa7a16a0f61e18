// The "Node.js Client" example of the Portfolio Streaming API document (spec/portfolio-streaming-api.md),
// verbatim below the marker; tests/process/clients_js/test_packaging.py sets `sessionId` and the URL and
// runs it against a real server.
// ---- the API document's example ----
const WebSocket = require("ws");

const ws = new WebSocket("wss://your-domain.com/ws/portfolio", {
  headers: {
    Cookie: `session=${sessionId}`,
  },
});

ws.on("open", () => {
  console.log("Connected");
  ws.send(
    JSON.stringify({
      type: "subscribe",
      channels: ["positions", "orders", "account"],
    })
  );
});

ws.on("message", (data) => {
  const event = JSON.parse(data);
  console.log("Event:", event.type, event.data);
});

ws.on("close", (code, reason) => {
  console.log("Closed:", code, reason);
});
