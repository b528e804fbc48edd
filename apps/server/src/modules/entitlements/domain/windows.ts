/** The window a metered quota counts in, [startMs, endMs). */
export interface Window {
  startMs: number;
  endMs: number;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** Calendar windows in UTC: a quota that resets daily renews at 00:00 UTC. */
export function fixedWindow(reset: "day" | "hour" | "minute", atMs: number): Window {
  const size = reset === "day" ? DAY_MS : reset === "hour" ? HOUR_MS : MINUTE_MS;
  const startMs = Math.floor(atMs / size) * size;
  return { startMs, endMs: startMs + size };
}

export function hourStart(atMs: number): number {
  return Math.floor(atMs / HOUR_MS) * HOUR_MS;
}

export function minuteStart(atMs: number): number {
  return Math.floor(atMs / MINUTE_MS) * MINUTE_MS;
}

export { DAY_MS, HOUR_MS, MINUTE_MS };
