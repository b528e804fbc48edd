// Pricing's tables (rate plans and versions, offerings, promotions). Filled in by the pricing module.
// biome-ignore lint/suspicious/noEmptyInterface: joined into Database; tables are added here
export interface PricingTables {}
