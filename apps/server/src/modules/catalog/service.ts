import type { Kysely } from "kysely";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { BillableUnit } from "./domain/billable-unit.ts";
import * as units from "./store/billable-units.ts";

export class CatalogService {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  constructor(database: DatabaseHandle, clock: Clock) {
    this.#database = database;
    this.#clock = clock;
  }

  /**
   * A billable unit by id (`bu_…`) or key (`api_calls`) in this tenant and mode. Pricing and
   * metering name units either way.
   */
  async findBillableUnit(
    scope: TenantScope,
    idOrKey: string,
    db: Kysely<Database> = this.#database.db,
  ): Promise<BillableUnit | undefined> {
    return units.findBillableUnit(db, scope, idOrKey);
  }

  /**
   * Records that rate plans or events now use these units, which freezes their aggregation.
   * Call it inside the transaction that creates the use.
   */
  async markBillableUnitsUsed(
    scope: TenantScope,
    unitIds: readonly string[],
    db: Kysely<Database> = this.#database.db,
  ): Promise<void> {
    await units.markUsed(db, scope, unitIds, this.#clock.now());
  }
}
