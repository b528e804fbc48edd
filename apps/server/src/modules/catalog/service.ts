import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";

export class CatalogService {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  constructor(database: DatabaseHandle, clock: Clock) {
    this.#database = database;
    this.#clock = clock;
  }
  get database(): DatabaseHandle {
    return this.#database;
  }
  get clock(): Clock {
    return this.#clock;
  }
}
