/**
 * Reading an import file into rows, without I/O. Rows are produced lazily (a 50 MB file can hold
 * half a million of them) and numbered by the line of the file where they start, which is what a
 * person opening the file in an editor or a spreadsheet sees (the CSV header is line 1).
 */

export type ImportFormat = "ndjson" | "csv";

/** The largest file an import takes (the contract's 50 MB). */
export const MAX_IMPORT_BYTES = 50 * 1024 * 1024;

/** A row read from the file: the event it describes, or why it could not be read. */
export type ParsedRow =
  | { row: number; ok: true; payload: Record<string, unknown> }
  | { row: number; ok: false; raw: string; message: string };

/** The file as a whole cannot be read: the job fails without processing a row. */
export class UnreadableFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnreadableFileError";
  }
}

/** UTF-8 text without its byte order mark; anything else is not a file we can read. */
export function decodeFile(content: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(content);
  } catch {
    throw new UnreadableFileError("The file is not UTF-8 text.");
  }
  return text;
}

export function parseRows(format: ImportFormat, text: string): Generator<ParsedRow> {
  return format === "csv" ? parseCsv(text) : parseNdjson(text);
}

/** Whether the file holds at least one row (a CSV header alone holds none). */
export function hasRows(format: ImportFormat, text: string): boolean {
  try {
    return !parseRows(format, text).next().done;
  } catch (error) {
    if (error instanceof UnreadableFileError) return true;
    throw error;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** One JSON object per line; blank lines are skipped (they are not rows). */
export function* parseNdjson(text: string): Generator<ParsedRow> {
  let start = 0;
  let line = 0;
  while (start < text.length) {
    line += 1;
    const newline = text.indexOf("\n", start);
    const end = newline === -1 ? text.length : newline;
    const raw = text.slice(start, end).replace(/\r$/, "");
    start = end + 1;
    if (raw.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      const reason = error instanceof Error ? error.message : "invalid JSON";
      yield { row: line, ok: false, raw, message: `Line ${line} is not valid JSON: ${reason}.` };
      continue;
    }
    if (!isObject(value)) {
      yield { row: line, ok: false, raw, message: `Line ${line} is not a JSON object.` };
      continue;
    }
    yield { row: line, ok: true, payload: value };
  }
}

/** A CSV record as RFC 4180 reads it, with the line where it starts. */
export interface CsvRecord {
  line: number;
  fields: string[];
  raw: string;
  /** Set when the quoting is broken; `fields` then holds what could be read. */
  error?: string;
}

const FIELD_END = /[,\r\n"]/g;

function countNewlines(text: string): number {
  let count = 0;
  let index = text.indexOf("\n");
  while (index !== -1) {
    count += 1;
    index = text.indexOf("\n", index + 1);
  }
  return count;
}

/**
 * RFC 4180: fields separated by commas, records by CRLF or LF; a quoted field may hold commas,
 * line breaks and doubled quotes. A quote inside an unquoted field is kept as text (spreadsheets
 * write such files); text after a closing quote, or a quote never closed, breaks the record.
 */
export function* csvRecords(text: string): Generator<CsvRecord> {
  let index = 0;
  let line = 1;
  while (index < text.length) {
    const start = index;
    const startLine = line;
    const fields: string[] = [];
    let error: string | undefined;
    let field = "";
    let atFieldStart = true;
    let ended = false;
    while (!ended) {
      if (index >= text.length) {
        fields.push(field);
        break;
      }
      if (atFieldStart && text[index] === '"') {
        const closing = readQuoted(text, index + 1);
        field = closing.value;
        line += countNewlines(closing.value);
        index = closing.next;
        atFieldStart = false;
        if (!closing.closed) {
          error = "a quoted field is never closed";
          fields.push(field);
          break;
        }
        const next = text[index];
        if (next !== undefined && next !== "," && next !== "\n" && next !== "\r") {
          error = "text follows a closing quote";
          const newline = text.indexOf("\n", index);
          index = newline === -1 ? text.length : newline + 1;
          if (newline !== -1) line += 1;
          fields.push(field);
          break;
        }
        continue;
      }
      FIELD_END.lastIndex = index;
      let match = FIELD_END.exec(text);
      // A quote inside an unquoted field is text: look past it.
      while (match && match[0] === '"') match = FIELD_END.exec(text);
      const stop = match ? match.index : text.length;
      field += text.slice(index, stop);
      atFieldStart = false;
      index = stop;
      const delimiter = text[stop];
      if (delimiter === ",") {
        fields.push(field);
        field = "";
        atFieldStart = true;
        index += 1;
      } else if (delimiter === "\n" || delimiter === "\r") {
        fields.push(field);
        index += delimiter === "\r" && text[stop + 1] === "\n" ? 2 : 1;
        line += 1;
        ended = true;
      }
    }
    const raw = text.slice(start, index).replace(/\r?\n$|\r$/, "");
    yield error === undefined ? { line: startLine, fields, raw } : { line: startLine, fields, raw, error };
  }
}

/** The text of a quoted field from just after its opening quote; `next` is past the closing quote. */
function readQuoted(text: string, from: number): { value: string; next: number; closed: boolean } {
  let value = "";
  let index = from;
  while (index < text.length) {
    const quote = text.indexOf('"', index);
    if (quote === -1) break;
    value += text.slice(index, quote);
    if (text[quote + 1] === '"') {
      value += '"';
      index = quote + 2;
      continue;
    }
    return { value, next: quote + 1, closed: true };
  }
  return { value: value + text.slice(index), next: text.length, closed: false };
}

/** What a CSV column holds: an event field, the properties as JSON, or one property. */
type Column =
  | { kind: "field"; name: string }
  | { kind: "properties" }
  | { kind: "property"; path: string[] }
  | { kind: "ignored" };

/** Header names compared loosely: `customer_id`, `customerId` and `Customer ID` are one column. */
const EVENT_COLUMNS: Record<string, string> = {
  customerid: "customer_id",
  customer: "customer_id",
  apikey: "api_key",
  metricid: "metric_id",
  metricname: "metric_id",
  metric: "metric_id",
  quantity: "quantity",
  timestamp: "timestamp",
  occurredat: "timestamp",
  idempotencykey: "idempotency_key",
  eventtype: "event_type",
};

export function columnOf(header: string): Column {
  const name = header.trim();
  if (name === "") return { kind: "ignored" };
  const loose = name.toLowerCase().replace(/[\s_-]/g, "");
  if (loose === "properties") return { kind: "properties" };
  const field = EVENT_COLUMNS[loose];
  if (field) return { kind: "field", name: field };
  const path = name.startsWith("properties.") ? name.slice("properties.".length).split(".") : [name];
  if (path.some((segment) => segment === "")) return { kind: "property", path: [name] };
  return { kind: "property", path };
}

/** Sets an own property, so that a column named `__proto__` is data, never a prototype. */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function setPath(target: Record<string, unknown>, path: string[], value: string): void {
  let current = target;
  for (const [position, segment] of path.entries()) {
    if (position === path.length - 1) {
      define(current, segment, value);
      return;
    }
    const next = Object.hasOwn(current, segment) ? current[segment] : undefined;
    if (isObject(next)) {
      current = next;
    } else {
      const created: Record<string, unknown> = {};
      define(current, segment, created);
      current = created;
    }
  }
}

/**
 * A CSV row as the event /v1/meter would receive. Empty cells are left out (CSV cannot tell an
 * empty value from a missing one); property values stay text, as the file wrote them.
 */
export function csvRowToEvent(
  columns: readonly Column[],
  fields: readonly string[],
): Record<string, unknown> {
  const event: Record<string, unknown> = {};
  let properties: Record<string, unknown> | undefined;
  const extra: Array<[string[], string]> = [];
  columns.forEach((column, position) => {
    const value = fields[position] ?? "";
    if (value === "" || column.kind === "ignored") return;
    if (column.kind === "field") {
      const trimmed = value.trim();
      if (trimmed !== "") define(event, column.name, trimmed);
    } else if (column.kind === "property") extra.push([column.path, value]);
    else {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        throw new RowError("the properties column is not valid JSON");
      }
      if (!isObject(parsed)) throw new RowError("the properties column is not a JSON object");
      properties = parsed;
    }
  });
  if (extra.length > 0) {
    properties ??= {};
    for (const [path, value] of extra) setPath(properties, path, value);
  }
  if (properties) event.properties = properties;
  return event;
}

class RowError extends Error {}

/** A header row, then one event per record; blank lines are skipped. */
export function* parseCsv(text: string): Generator<ParsedRow> {
  let columns: Column[] | undefined;
  for (const record of csvRecords(text)) {
    if (record.raw.trim() === "" && record.fields.length <= 1 && record.error === undefined) continue;
    if (!columns) {
      if (record.error !== undefined) {
        throw new UnreadableFileError(`The CSV header (line ${record.line}) is malformed: ${record.error}.`);
      }
      columns = record.fields.map(columnOf);
      if (columns.every((column) => column.kind === "ignored")) {
        throw new UnreadableFileError(`The CSV header (line ${record.line}) names no columns.`);
      }
      continue;
    }
    const row = record.line;
    if (record.error !== undefined) {
      yield { row, ok: false, raw: record.raw, message: `Row ${row} is malformed: ${record.error}.` };
      continue;
    }
    if (record.fields.length !== columns.length) {
      const message = `Row ${row} has ${record.fields.length} fields; the header has ${columns.length}.`;
      yield { row, ok: false, raw: record.raw, message };
      continue;
    }
    try {
      yield { row, ok: true, payload: csvRowToEvent(columns, record.fields) };
    } catch (error) {
      if (!(error instanceof RowError)) throw error;
      yield { row, ok: false, raw: record.raw, message: `Row ${row} is malformed: ${error.message}.` };
    }
  }
}

/** The format a Content-Type names, if it names one of ours. */
export function formatOfContentType(contentType: string | undefined): ImportFormat | undefined {
  const type = (contentType ?? "").split(";")[0]?.trim().toLowerCase();
  if (
    type === "application/x-ndjson" ||
    type === "application/ndjson" ||
    type === "application/jsonl" ||
    type === "application/x-jsonlines" ||
    type === "application/jsonlines"
  ) {
    return "ndjson";
  }
  if (type === "text/csv" || type === "application/csv") return "csv";
  return undefined;
}

/** The format a file name's extension names, if any. */
export function formatOfFilename(filename: string): ImportFormat | undefined {
  const extension = filename.toLowerCase().split(".").at(-1);
  if (extension === "ndjson" || extension === "jsonl") return "ndjson";
  if (extension === "csv") return "csv";
  return undefined;
}

export const CONTENT_TYPES: Record<ImportFormat, string> = {
  ndjson: "application/x-ndjson",
  csv: "text/csv",
};
