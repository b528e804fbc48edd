import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { CatalogService } from "../catalog/service.ts";

export class PricingService {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #catalog: CatalogService;
  constructor(database: DatabaseHandle, clock: Clock, catalog: CatalogService) {
    this.#database = database;
    this.#clock = clock;
    this.#catalog = catalog;
  }
  get dependencies() {
    return { database: this.#database, clock: this.#clock, catalog: this.#catalog };
  }
}
