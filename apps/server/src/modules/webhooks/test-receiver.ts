import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request a test receiver got. */
export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** How a path answers: a status and body, or "hang" (never answers). */
export type Answer = { status: number; body?: string } | "hang";

/**
 * A webhook receiver for tests: a real node:http server on 127.0.0.1 that records every request
 * and answers per path (200 unless told otherwise).
 */
export class TestReceiver {
  readonly received: Received[] = [];
  readonly #answers = new Map<string, Answer>();
  readonly #hanging: ServerResponse[] = [];
  readonly #server: Server;
  #baseUrl = "";

  constructor() {
    this.#server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const path = request.url ?? "/";
        this.received.push({
          path,
          headers: flatten(request.headers),
          body: Buffer.concat(chunks).toString(),
        });
        const answer = this.#answers.get(path) ?? { status: 200, body: "ok" };
        if (answer === "hang") {
          this.#hanging.push(response);
          return;
        }
        response.writeHead(answer.status, { "content-type": "text/plain" });
        response.end(answer.body ?? "");
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    const { port } = this.#server.address() as AddressInfo;
    this.#baseUrl = `http://127.0.0.1:${port}`;
    return this;
  }

  url(path: string): string {
    return `${this.#baseUrl}${path}`;
  }

  answer(path: string, answer: Answer): void {
    this.#answers.set(path, answer);
  }

  /** Answers every request left hanging so far with this status. */
  release(status = 200): void {
    for (const response of this.#hanging.splice(0)) {
      response.writeHead(status, { "content-type": "text/plain" });
      response.end("released");
    }
  }

  at(path: string): Received[] {
    return this.received.filter((request) => request.path === path);
  }

  /** Waits (polling, real time) until `count` requests reached `path`. */
  async waitFor(path: string, count = 1, timeoutMs = 10_000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.at(path).length < count) {
      if (Date.now() > deadline) {
        throw new Error(`expected ${count} request(s) at ${path}, got ${this.at(path).length}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.at(path);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function flatten(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return flat;
}

/** Polls `condition` (real time) until it holds. */
export async function eventually<T>(
  read: () => Promise<T>,
  condition: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (condition(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
