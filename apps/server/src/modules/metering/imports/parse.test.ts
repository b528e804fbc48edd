import { describe, expect, it } from "vitest";
import {
  columnOf,
  csvRecords,
  decodeFile,
  formatOfContentType,
  formatOfFilename,
  hasRows,
  parseCsv,
  parseNdjson,
  UnreadableFileError,
} from "./parse.ts";

const records = (text: string) =>
  [...csvRecords(text)].map(({ line, fields, error }) => ({ line, fields, error }));

describe("CSV records (RFC 4180)", () => {
  it("splits fields on commas and records on LF or CRLF, with or without a final line break", () => {
    expect(records("a,b\r\n1,2\n3,4")).toEqual([
      { line: 1, fields: ["a", "b"], error: undefined },
      { line: 2, fields: ["1", "2"], error: undefined },
      { line: 3, fields: ["3", "4"], error: undefined },
    ]);
    expect(records("a,b\n")).toHaveLength(1);
  });

  it("keeps commas, line breaks and doubled quotes inside quoted fields", () => {
    const text = 'id,note\n1,"hello, world"\n2,"line one\r\nline two"\n3,"she said ""hi"""\n4,""\n';
    expect(records(text)).toEqual([
      { line: 1, fields: ["id", "note"], error: undefined },
      { line: 2, fields: ["1", "hello, world"], error: undefined },
      { line: 3, fields: ["2", "line one\r\nline two"], error: undefined },
      { line: 5, fields: ["3", 'she said "hi"'], error: undefined },
      { line: 6, fields: ["4", ""], error: undefined },
    ]);
  });

  it("reads empty fields, a trailing comma and a quote inside an unquoted field", () => {
    expect(records(',a,\nx"y,2,3')).toEqual([
      { line: 1, fields: ["", "a", ""], error: undefined },
      { line: 2, fields: ['x"y', "2", "3"], error: undefined },
    ]);
  });

  it("reports text after a closing quote and then goes on with the next line", () => {
    expect(records('"ab"c,1\nok,2\n')).toEqual([
      { line: 1, fields: ["ab"], error: "text follows a closing quote" },
      { line: 2, fields: ["ok", "2"], error: undefined },
    ]);
  });

  it("reports a quote never closed (it runs to the end of the file)", () => {
    const [first, second] = records('a,b\n1,"open\n2,3\n');
    expect(first?.error).toBeUndefined();
    expect(second).toEqual({
      line: 2,
      fields: ["1", "open\n2,3\n"],
      error: "a quoted field is never closed",
    });
  });
});

describe("CSV rows as events", () => {
  const rows = (text: string) => [...parseCsv(text)];

  it("maps the contract's columns and the SDK spellings, and numbers rows by their line", () => {
    const text = [
      "customer_id,metric_id,quantity,timestamp,idempotency_key,event_type",
      "cus_1,api_calls,2,2026-11-28T10:00:00Z,k-1,call",
    ].join("\n");
    expect(rows(text)).toEqual([
      {
        row: 2,
        ok: true,
        payload: {
          customer_id: "cus_1",
          metric_id: "api_calls",
          quantity: "2",
          timestamp: "2026-11-28T10:00:00Z",
          idempotency_key: "k-1",
          event_type: "call",
        },
      },
    ]);
    expect(rows("customerId,metricName,occurredAt,idempotencyKey\nc,m,2026-11-28T10:00:00Z,k")).toEqual([
      {
        row: 2,
        ok: true,
        payload: {
          customer_id: "c",
          metric_id: "m",
          timestamp: "2026-11-28T10:00:00Z",
          idempotency_key: "k",
        },
      },
    ]);
  });

  it("builds properties from a JSON column, properties.<path> columns and plain extra columns", () => {
    const text =
      'customer_id,metric_id,properties,properties.tokens.input,region\nc,m,"{""model"":""gpt""}",120,eu\n';
    expect(rows(text)).toEqual([
      {
        row: 2,
        ok: true,
        payload: {
          customer_id: "c",
          metric_id: "m",
          properties: { model: "gpt", tokens: { input: "120" }, region: "eu" },
        },
      },
    ]);
  });

  it("leaves out empty cells and trims event fields", () => {
    expect(rows("customer_id,metric_id,quantity,region\n c ,m,,\n")).toEqual([
      { row: 2, ok: true, payload: { customer_id: "c", metric_id: "m" } },
    ]);
  });

  it("keeps a column named __proto__ as data", () => {
    const [row] = rows("customer_id,__proto__\nc,x\n");
    expect(row?.ok && row.payload.properties).toEqual(Object.fromEntries([["__proto__", "x"]]));
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it("fails a row with another number of fields, broken quoting or bad properties, and goes on", () => {
    const text = ["customer_id,metric_id,properties", "c,m", '"c"x,m,', "c,m,[1]", "c,m,{bad", "c,m,"].join(
      "\n",
    );
    const result = rows(text);
    expect(result.map((row) => [row.row, row.ok])).toEqual([
      [2, false],
      [3, false],
      [4, false],
      [5, false],
      [6, true],
    ]);
    const messages = result.flatMap((row) => (row.ok ? [] : [row.message]));
    expect(messages).toEqual([
      "Row 2 has 2 fields; the header has 3.",
      "Row 3 is malformed: text follows a closing quote.",
      "Row 4 is malformed: the properties column is not a JSON object.",
      "Row 5 is malformed: the properties column is not valid JSON.",
    ]);
    expect(result[0]).toMatchObject({ raw: "c,m" });
  });

  it("skips blank lines (before the header too) and counts lines across quoted line breaks", () => {
    const text = '\ncustomer_id,metric_id,note\n\nc,m,"a\nb"\n\nc,m,x\n';
    expect(rows(text).map((row) => row.row)).toEqual([4, 7]);
  });

  it("cannot read a file whose header is broken or names no column", () => {
    expect(() => rows('"a"b,c\n1,2')).toThrow(UnreadableFileError);
    expect(() => rows(",,\n1,2,3")).toThrow(UnreadableFileError);
  });

  it("matches header names loosely", () => {
    expect(columnOf("Customer ID")).toEqual({ kind: "field", name: "customer_id" });
    expect(columnOf(" metric-name ")).toEqual({ kind: "field", name: "metric_id" });
    expect(columnOf("properties.a.b")).toEqual({ kind: "property", path: ["a", "b"] });
    expect(columnOf("properties..x")).toEqual({ kind: "property", path: ["properties..x"] });
    expect(columnOf("")).toEqual({ kind: "ignored" });
  });
});

describe("NDJSON rows", () => {
  it("reads one object per line, skips blank lines and numbers rows by their line", () => {
    const text = '{"customer_id":"c","metric_id":"m"}\n\n   \r\n{"customer_id":"d","metric_id":"m"}\r\n';
    expect([...parseNdjson(text)]).toEqual([
      { row: 1, ok: true, payload: { customer_id: "c", metric_id: "m" } },
      { row: 4, ok: true, payload: { customer_id: "d", metric_id: "m" } },
    ]);
  });

  it("fails a line that is not JSON or not an object, and goes on", () => {
    const rows = [...parseNdjson('{"a":1}\n{"a":\n[1,2]\n"text"\n{"b":2}')];
    expect(rows.map((row) => [row.row, row.ok])).toEqual([
      [1, true],
      [2, false],
      [3, false],
      [4, false],
      [5, true],
    ]);
    expect(rows[1]).toMatchObject({
      raw: '{"a":',
      message: expect.stringMatching(/^Line 2 is not valid JSON/),
    });
    expect(rows[2]).toMatchObject({ message: "Line 3 is not a JSON object." });
  });
});

describe("files", () => {
  it("decodes UTF-8 without its byte order mark and refuses anything else", () => {
    expect(decodeFile(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]))).toBe("a");
    expect(() => decodeFile(new Uint8Array([0xff, 0xfe, 0x00]))).toThrow(UnreadableFileError);
  });

  it("knows whether a file holds a row", () => {
    expect(hasRows("ndjson", "\n  \n")).toBe(false);
    expect(hasRows("ndjson", "not json")).toBe(true);
    expect(hasRows("csv", "customer_id,metric_id\n")).toBe(false);
    expect(hasRows("csv", "customer_id,metric_id\nc,m")).toBe(true);
    expect(hasRows("csv", '"a"b\n')).toBe(true);
  });

  it("tells the format from the content type and from the file name", () => {
    expect(formatOfContentType("application/x-ndjson; charset=utf-8")).toBe("ndjson");
    expect(formatOfContentType("application/jsonl")).toBe("ndjson");
    expect(formatOfContentType("text/csv")).toBe("csv");
    expect(formatOfContentType("application/json")).toBeUndefined();
    expect(formatOfFilename("usage.JSONL")).toBe("ndjson");
    expect(formatOfFilename("usage.csv")).toBe("csv");
    expect(formatOfFilename("usage.txt")).toBeUndefined();
  });
});
