import { newId } from "@aforo/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createUnit, type Fixture, sandbox } from "../../../testing/fixtures.ts";
import { createTestApp, type TestApp } from "../../../testing/test-app.ts";
import type { MeterEventInput } from "../domain/event-input.ts";
import { parseRows } from "./parse.ts";
import { CHUNK_ROWS, fileKeyPrefix, prepareRow } from "./runner.ts";

interface Job {
  id: string;
  object: string;
  status: string;
  format: string;
  filename: string | null;
  total_rows: number;
  processed_rows: number;
  accepted_rows: number;
  duplicate_rows: number;
  failed_rows: number;
  errors: { row: number; code: string; message: string }[];
  created_at: string;
  completed_at: string | null;
}

describe("file import (/v1/ingest/files)", () => {
  let t: TestApp;
  let f: Fixture;
  let customer: { id: string };

  beforeAll(async () => {
    t = await createTestApp();
    f = await sandbox(t);
    await createUnit(t, f, { key: "api_calls", aggregation: "COUNT" });
    await createUnit(t, f, { key: "tokens", aggregation: "SUM", field: "tokens.input" });
    customer = await createCustomer(t, f, { external_id: "crm-1" });
  });
  afterAll(() => t.close());

  const upload = (
    body: string | Buffer,
    contentType = "application/x-ndjson",
    options: { query?: Record<string, string>; headers?: Record<string, string>; key?: string } = {},
  ) =>
    t.app.inject({
      method: "POST",
      url: "/v1/ingest/files",
      query: options.query ?? {},
      headers: {
        authorization: `Bearer ${options.key ?? f.tenant.testKey}`,
        "x-tenant-id": f.tenant.id,
        "content-type": contentType,
        ...options.headers,
      },
      payload: body,
    });

  const job = async (id: string): Promise<Job> => {
    const response = await t.request("GET", `/v1/ingest/files/${id}`, f.as);
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };

  /** Uploads, lets the runner finish, and answers the job as GET shows it. */
  const imported = async (body: string | Buffer, contentType?: string): Promise<Job> => {
    const response = await upload(body, contentType);
    expect(response.statusCode, response.body).toBe(202);
    await t.context.imports.whenIdle();
    return job(response.json().id);
  };

  const ndjson = (...lines: Array<Record<string, unknown> | string>) =>
    `${lines.map((line) => (typeof line === "string" ? line : JSON.stringify(line))).join("\n")}\n`;

  const eventsWithKeys = (keys: string[]) =>
    t.database.db
      .selectFrom("usage_events")
      .selectAll()
      .where("tenant_id", "=", f.tenant.id)
      .where("idempotency_key", "in", keys)
      .execute();

  it("answers 202 with a QUEUED job, then processes it: good rows counted, a duplicate, a failure and a malformed line reported by row", async () => {
    const content = ndjson(
      { customer_id: customer.id, metric_id: "api_calls", idempotency_key: "nd-1" },
      {
        customerId: "crm-1",
        metricName: "tokens",
        occurredAt: t.clock.now().toISOString(),
        idempotencyKey: "nd-2",
        properties: { tokens: { input: 120 } },
      },
      "",
      { customer_id: customer.id, metric_id: "api_calls", idempotency_key: "nd-1" },
      { customer_id: "cus_nope", metric_id: "api_calls" },
      '{"customer_id": "broken',
      { customer_id: customer.id, metric_id: "api_calls" },
    );
    const response = await upload(content, "application/x-ndjson", { query: { filename: "usage.ndjson" } });
    expect(response.statusCode, response.body).toBe(202);
    const queued = response.json<Job>();
    expect(queued).toEqual({
      id: expect.stringMatching(/^imp_/),
      object: "import_job",
      status: "QUEUED",
      format: "ndjson",
      filename: "usage.ndjson",
      total_rows: 0,
      processed_rows: 0,
      accepted_rows: 0,
      duplicate_rows: 0,
      failed_rows: 0,
      errors: [],
      created_at: t.clock.now().toISOString(),
      completed_at: null,
    });

    await t.context.imports.whenIdle();
    const done = await job(queued.id);
    expect(done).toMatchObject({
      status: "PARTIAL",
      total_rows: 6,
      processed_rows: 6,
      accepted_rows: 3,
      duplicate_rows: 1,
      failed_rows: 2,
      completed_at: t.clock.now().toISOString(),
    });
    expect(done.errors).toEqual([
      { row: 5, code: "unknown-customer", message: "No customer 'cus_nope' exists in this tenant." },
      { row: 6, code: "malformed-row", message: expect.stringMatching(/^Line 6 is not valid JSON/) },
    ]);

    const events = await eventsWithKeys(["nd-1", "nd-2", `${fileKeyPrefix(content)}:7`]);
    expect(events.map((event) => [event.idempotency_key, event.source, event.customer_id]).sort()).toEqual([
      [`${fileKeyPrefix(content)}:7`, "file", customer.id],
      ["nd-1", "file", customer.id],
      ["nd-2", "file", customer.id],
    ]);
    expect(events.find((event) => event.idempotency_key === "nd-2")?.value).toBe("120");

    const deadLetters = await t.database.db
      .selectFrom("dead_letters")
      .selectAll()
      .where("tenant_id", "=", f.tenant.id)
      .where("source", "=", "file")
      .orderBy("id")
      .execute();
    expect(deadLetters.map((letter) => [letter.reason_code, letter.payload])).toEqual([
      [
        "unknown-customer",
        { customer_id: "cus_nope", metric_id: "api_calls", idempotency_key: `${fileKeyPrefix(content)}:5` },
      ],
      ["malformed-row", '{"customer_id": "broken'],
    ]);

    const list = await t.request("GET", "/v1/ingest/files", f.as);
    expect(list.statusCode).toBe(200);
    expect(list.json().data.map((item: Job) => item.id)).toContain(queued.id);
  });

  it("imports a CSV file with quoted fields, properties and the SDK's column names: COMPLETED", async () => {
    const at = t.clock.now().toISOString();
    const content = [
      "customerId,metricName,quantity,occurredAt,idempotencyKey,properties,properties.tokens.input,region",
      `crm-1,tokens,1,${at},csv-1,"{""model"":""gpt-4o""}",30,"eu, west"`,
      `${customer.id},api_calls,,${at},csv-2,,,"multi`,
      `line"`,
      `${customer.id},api_calls,,,,,,`,
    ].join("\r\n");
    const done = await imported(content, "text/csv");
    expect(done).toMatchObject({
      status: "COMPLETED",
      format: "csv",
      total_rows: 3,
      processed_rows: 3,
      accepted_rows: 3,
      duplicate_rows: 0,
      failed_rows: 0,
      errors: [],
    });
    const [first] = await eventsWithKeys(["csv-1"]);
    expect(first?.properties).toEqual({ model: "gpt-4o", tokens: { input: "30" }, region: "eu, west" });
    expect(first?.value).toBe("30");
    const [second] = await eventsWithKeys(["csv-2"]);
    expect(second?.properties).toEqual({ region: "multi\r\nline" });
    expect(await eventsWithKeys([`${fileKeyPrefix(content)}:5`])).toHaveLength(1);
  });

  it("counts nothing twice when the same file is imported again: every row is a duplicate", async () => {
    const rows = Array.from({ length: 5 }, (_, index) => ({
      customer_id: customer.id,
      metric_id: "api_calls",
      idempotency_key: `again-${index}`,
    }));
    const first = await imported(ndjson(...rows));
    expect(first).toMatchObject({ status: "COMPLETED", accepted_rows: 5, duplicate_rows: 0 });
    const second = await imported(ndjson(...rows));
    expect(second).toMatchObject({
      status: "COMPLETED",
      accepted_rows: 0,
      duplicate_rows: 5,
      failed_rows: 0,
    });
    expect(await eventsWithKeys(rows.map((row) => row.idempotency_key))).toHaveLength(5);
  });

  it("counts nothing twice when the same file without keys is imported again", async () => {
    const content = ndjson(
      { customer_id: customer.id, metric_id: "api_calls" },
      { customer_id: customer.id, metric_id: "api_calls" },
    );
    expect(await imported(content)).toMatchObject({ accepted_rows: 2, duplicate_rows: 0 });
    expect(await imported(content)).toMatchObject({ accepted_rows: 0, duplicate_rows: 2 });
    const keys = [1, 2].map((row) => `${fileKeyPrefix(content)}:${row}`);
    expect(await eventsWithKeys(keys)).toHaveLength(2);
  });

  it("replays the upload itself for a retried Idempotency-Key instead of creating a second job", async () => {
    const content = ndjson({ customer_id: customer.id, metric_id: "api_calls" });
    const headers = { "idempotency-key": "upload-1" };
    const first = await upload(content, "application/x-ndjson", { headers });
    const retry = await upload(content, "application/x-ndjson", { headers });
    expect(first.statusCode).toBe(202);
    expect(retry.statusCode).toBe(202);
    expect(retry.json().id).toBe(first.json().id);
    expect(retry.headers["idempotent-replayed"]).toBe("true");
    const other = await upload(ndjson({ customer_id: customer.id, metric_id: "tokens" }), undefined, {
      headers,
    });
    expect(other.statusCode).toBe(409);
    await t.context.imports.whenIdle();
  });

  it("fails a job whose every row fails, and a file that is not UTF-8", async () => {
    const allBad = await imported(ndjson({ customer_id: "cus_nope", metric_id: "api_calls" }, "[1]"));
    expect(allBad).toMatchObject({ status: "FAILED", total_rows: 2, failed_rows: 2, accepted_rows: 0 });
    const binary = await imported(Buffer.from([0xff, 0xfe, 0x7b, 0x7d, 0x0a]));
    expect(binary).toMatchObject({ status: "FAILED", total_rows: 0, processed_rows: 0 });
    expect(binary.errors).toEqual([
      { row: 0, code: "malformed-file", message: "The file is not UTF-8 text." },
    ]);
  });

  it("resumes a job a crash left PROCESSING at its checkpoint and counts every row exactly once", async () => {
    const resumer = await createCustomer(t, f, { external_id: "crm-resume" });
    const total = 2 * CHUNK_ROWS + 100;
    const content = ndjson(
      ...Array.from({ length: total }, () => ({ customer_id: resumer.id, metric_id: "api_calls" })),
    );
    const id = newId("importJob");
    const scope = { tenantId: f.tenant.id, mode: "test" as const };
    const checkpoint = new Date(t.clock.now().getTime() - 10 * 60_000);
    await t.database.db
      .insertInto("import_jobs")
      .values({
        id,
        tenant_id: scope.tenantId,
        mode: scope.mode,
        status: "PROCESSING",
        format: "ndjson",
        filename: "crashed.ndjson",
        content: Buffer.from(content),
        total_rows: total,
        processed_rows: CHUNK_ROWS,
        accepted_rows: CHUNK_ROWS,
        duplicate_rows: 0,
        failed_rows: 0,
        errors: JSON.stringify([]),
        created_at: checkpoint,
        updated_at: checkpoint,
        completed_at: null,
        attempt: 1,
      })
      .execute();
    // What the crashed run stored: the first chunk (checkpointed) and part of the second (not).
    const inputs = [...parseRows("ndjson", content)]
      .slice(0, CHUNK_ROWS + 200)
      .map((row) => prepareRow(row, fileKeyPrefix(content)).input as MeterEventInput);
    await t.context.metering.ingest(scope, inputs, "file");

    t.context.imports.start();
    await t.context.imports.whenIdle();

    expect(await job(id)).toMatchObject({
      status: "COMPLETED",
      total_rows: total,
      processed_rows: total,
      accepted_rows: total,
      duplicate_rows: 0,
      failed_rows: 0,
    });
    const events = await t.database.db
      .selectFrom("usage_events")
      .select("idempotency_key")
      .where("tenant_id", "=", f.tenant.id)
      .where("customer_id", "=", resumer.id)
      .execute();
    expect(events).toHaveLength(total);
    expect(new Set(events.map((event) => event.idempotency_key))).toEqual(
      new Set(Array.from({ length: total }, (_, index) => `${fileKeyPrefix(content)}:${index + 1}`)),
    );
  });

  it("refuses an empty file, a CSV header without rows and other content types with 400 and 415", async () => {
    const empty = await upload("");
    expect(empty.statusCode).toBe(400);
    const blank = await upload("\n\n");
    expect(blank.statusCode).toBe(400);
    const headerOnly = await upload("customer_id,metric_id\n", "text/csv");
    expect(headerOnly.statusCode).toBe(400);
    expect(headerOnly.json().detail).toContain("no rows");
    const json = await upload(JSON.stringify({ customer_id: customer.id }), "application/json");
    expect(json.statusCode).toBe(415);
    const text = await upload("x", "text/plain");
    expect(text.statusCode).toBe(415);
  });

  /** A multipart/form-data body with one file part, as `curl -F file=@<name>` sends it. */
  const form = (filename: string, type: string, content: string | Buffer, boundary = "aforo-test-boundary") =>
    Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`,
      ),
      Buffer.isBuffer(content) ? content : Buffer.from(content),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
  const multipartType = "multipart/form-data; boundary=aforo-test-boundary";

  it("imports a file sent as a multipart form, its format from the part's type or its name", async () => {
    const at = t.clock.now().toISOString();
    const csv = `customer_id,metric_id,timestamp,idempotency_key\n${customer.id},api_calls,${at},form-csv-1\n`;
    const byName = await upload(form("usage.csv", "application/octet-stream", csv), multipartType);
    expect(byName.statusCode, byName.body).toBe(202);
    expect(byName.json()).toMatchObject({ status: "QUEUED", format: "csv", filename: "usage.csv" });
    const lines = ndjson({ customer_id: customer.id, metric_id: "api_calls", idempotency_key: "form-nd-1" });
    const byType = await upload(form("events.txt", "application/x-ndjson", lines), multipartType);
    expect(byType.statusCode, byType.body).toBe(202);
    expect(byType.json()).toMatchObject({ format: "ndjson", filename: "events.txt" });
    await t.context.imports.whenIdle();
    expect(await job(byName.json().id)).toMatchObject({ status: "COMPLETED", accepted_rows: 1 });
    expect(await eventsWithKeys(["form-csv-1", "form-nd-1"])).toHaveLength(2);

    const unknown = await upload(form("notes.txt", "text/plain", "x"), multipartType);
    expect(unknown.statusCode).toBe(415);
    const noFile = await upload(
      Buffer.from('--b\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--b--\r\n'),
      "multipart/form-data; boundary=b",
    );
    expect(noFile.statusCode).toBe(400);
    expect(noFile.headers["content-type"]).toContain("application/problem+json");
  });

  it("replays a form upload for a retried Idempotency-Key and refuses the key with another file (409)", async () => {
    const headers = { "idempotency-key": "form-upload-1" };
    const first = form(
      "a.ndjson",
      "application/x-ndjson",
      ndjson({ customer_id: customer.id, metric_id: "api_calls" }),
    );
    const sent = await upload(first, multipartType, { headers });
    expect(sent.statusCode).toBe(202);
    const again = await upload(first, multipartType, { headers });
    expect(again.statusCode).toBe(202);
    expect(again.json().id).toBe(sent.json().id);
    const other = form(
      "b.ndjson",
      "application/x-ndjson",
      ndjson({ customer_id: customer.id, metric_id: "tokens" }),
    );
    expect((await upload(other, multipartType, { headers })).statusCode).toBe(409);
    await t.context.imports.whenIdle();
  });

  it("refuses a form file over 50 MB with 413", async () => {
    const response = await upload(
      form("big.ndjson", "application/x-ndjson", Buffer.alloc(50 * 1024 * 1024 + 1, 0x20)),
      multipartType,
    );
    expect(response.statusCode).toBe(413);
    expect(response.json().type).toMatch(/\/problems\/payload-too-large$/);
  });

  it("refuses a file over 50 MB with 413", async () => {
    const response = await upload(Buffer.alloc(50 * 1024 * 1024 + 1, 0x20));
    expect(response.statusCode).toBe(413);
    expect(response.json().type).toMatch(/\/problems\/payload-too-large$/);
  });

  it("answers 404 for a job of another tenant or of the other mode", async () => {
    const mine = await imported(ndjson({ customer_id: customer.id, metric_id: "api_calls" }));
    const other = await sandbox(t);
    const otherTenant = await t.request("GET", `/v1/ingest/files/${mine.id}`, other.as);
    expect(otherTenant.statusCode).toBe(404);
    const liveMode = await t.request("GET", `/v1/ingest/files/${mine.id}`, {
      key: f.tenant.liveKey,
      tenant: f.tenant.id,
    });
    expect(liveMode.statusCode).toBe(404);
    const otherList = await t.request("GET", "/v1/ingest/files", other.as);
    expect(otherList.json()).toEqual({ data: [], has_more: false });
  });
});
