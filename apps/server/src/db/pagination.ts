import type { SelectQueryBuilder } from "kysely";

export interface PageRequest {
  limit: number;
  startingAfter?: string | undefined;
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
}

export const DEFAULT_PAGE_LIMIT = 20;
export const MAX_PAGE_LIMIT = 100;

/**
 * Newest first, as Stripe lists: ids are time-sortable, so `starting_after` is a cursor that
 * stays stable while rows are added. Fetches one extra row to know whether there is more.
 */
export async function fetchPage<DB, TB extends keyof DB, O extends { id: string }>(
  query: SelectQueryBuilder<DB, TB, O>,
  idColumn: string,
  page: PageRequest,
): Promise<Page<O>> {
  // biome-ignore lint/suspicious/noExplicitAny: Kysely cannot type a column reference passed as a string
  const column = idColumn as any;
  let scoped = query;
  if (page.startingAfter) scoped = scoped.where(column, "<", page.startingAfter);
  const rows = await scoped
    .orderBy(column, "desc")
    .limit(page.limit + 1)
    .execute();
  return { data: rows.slice(0, page.limit), has_more: rows.length > page.limit };
}
