/**
 * The yardstick: a bare `node:http` server answering a fixed small JSON body to any request, after
 * reading (and discarding) the request body. Run as a child process, like the Aforo server, so both
 * stand on the same footing; it reports its port over IPC and exits when the harness goes away.
 */
import http from "node:http";

const BODY = Buffer.from(JSON.stringify({ status: "ok" }));

const HEADERS = { "content-type": "application/json; charset=utf-8", "content-length": BODY.length };

const server = http.createServer((request, response) => {
  const answer = () => {
    response.writeHead(200, HEADERS);
    response.end(BODY);
  };
  // Like Fastify, do not wait for a body that a request does not announce (a plain GET).
  if (request.headers["content-length"] === undefined && request.headers["transfer-encoding"] === undefined) {
    answer();
    return;
  }
  request.once("end", answer);
  request.resume();
});

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  if (process.send) process.send({ port });
  else process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
// The harness died without cleaning up: do not outlive it.
process.once("disconnect", () => process.exit(0));
