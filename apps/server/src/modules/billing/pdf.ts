import { fromMinorUnits } from "@aforo/core";
import type PDFKit from "pdfkit";
import type { Customer } from "../customers/domain.ts";
import type { Invoice } from "./domain/invoice.ts";
import type { BillingEntity } from "./ports.ts";

export interface InvoicePdfInput {
  invoice: Invoice;
  seller: BillingEntity;
  buyer: Customer;
  /** Deflate the content streams (smaller); tests read the text uncompressed. */
  compress: boolean;
}

const day = (at: Date | null) => (at ? at.toISOString().slice(0, 10) : "—");

function money(amount: bigint, currency: string): string {
  return `${fromMinorUnits(amount, currency)} ${currency}`;
}

function sellerLines(seller: BillingEntity): string[] {
  const address = seller.address ?? {};
  const lines = [seller.legalName];
  for (const key of ["line1", "line2", "city", "state", "postal_code", "postalCode", "country"]) {
    const value = address[key];
    if (value) lines.push(value);
  }
  if (seller.taxId) lines.push(`Tax ID: ${seller.taxId}`);
  return lines;
}

function buyerLines(buyer: Customer): string[] {
  const lines = [buyer.name, buyer.email];
  const address = buyer.address;
  if (address) {
    lines.push(address.line1);
    if (address.line2) lines.push(address.line2);
    lines.push([address.postalCode, address.city, address.state].filter(Boolean).join(" "), address.country);
  }
  if (buyer.tax?.taxId) lines.push(`Tax ID: ${buyer.tax.taxId}`);
  if (buyer.tax?.exempt) lines.push("Tax exempt");
  return lines;
}

/**
 * An invoice a customer's accounts payable would accept: seller (legal name, address, tax id),
 * buyer, number and dates, every line, the totals and the tax breakdown. Standard PDF fonts only,
 * so the document renders anywhere without embedding.
 */
export async function renderInvoicePdf(input: InvoicePdfInput): Promise<Buffer> {
  // Loaded on the first PDF, not when the server starts.
  const PDFDocument: typeof PDFKit = (await import("pdfkit")).default;
  const { invoice, seller, buyer } = input;
  const title = invoice.number ? `Invoice ${invoice.number}` : "Draft invoice";
  const doc = new PDFDocument({
    size: "A4",
    margin: 50,
    compress: input.compress,
    info: { Title: title, Author: seller.legalName, Subject: `${title} for ${buyer.name}` },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on("data", (chunk: Buffer) => chunks.push(chunk));
    doc.on("end", () => resolve(Buffer.concat(chunks)));
    doc.on("error", reject);
  });
  const currency = invoice.currency;

  doc
    .font("Helvetica-Bold")
    .fontSize(20)
    .text(invoice.number ? "INVOICE" : "DRAFT INVOICE", 50, 50);
  doc.font("Helvetica").fontSize(10);
  const facts = [
    `Number: ${invoice.number ?? "(assigned when finalised)"}`,
    `Status: ${invoice.status}`,
    `Issued: ${day(invoice.issuedAt)}`,
    `Due: ${day(invoice.dueAt)}`,
    `Period: ${day(invoice.periodStart)} to ${day(invoice.periodEnd)}`,
  ];
  doc.text(facts.join("\n"), 350, 50, { width: 200, align: "right" });

  doc.font("Helvetica-Bold").text("From", 50, 140);
  doc.font("Helvetica").text(sellerLines(seller).join("\n"), 50, 155, { width: 230 });
  doc.font("Helvetica-Bold").text("Bill to", 320, 140);
  doc.font("Helvetica").text(buyerLines(buyer).join("\n"), 320, 155, { width: 230 });

  let y = 260;
  const columns = { description: 50, quantity: 330, unitPrice: 400, amount: 480 };
  doc.font("Helvetica-Bold");
  doc.text("Description", columns.description, y);
  doc.text("Qty", columns.quantity, y, { width: 60, align: "right" });
  doc.text("Unit price", columns.unitPrice, y, { width: 70, align: "right" });
  doc.text("Amount", columns.amount, y, { width: 70, align: "right" });
  y += 16;
  doc.moveTo(50, y).lineTo(550, y).stroke();
  y += 6;
  doc.font("Helvetica").fontSize(9);
  for (const line of invoice.lines) {
    if (y > 740) {
      doc.addPage();
      y = 50;
    }
    const height = doc.heightOfString(line.description, { width: 270 });
    doc.text(line.description, columns.description, y, { width: 270 });
    doc.text(line.quantity, columns.quantity, y, { width: 60, align: "right" });
    doc.text(line.unitPrice ?? "", columns.unitPrice, y, { width: 70, align: "right" });
    doc.text(fromMinorUnits(line.amountMinor, currency), columns.amount, y, { width: 70, align: "right" });
    y += Math.max(height, 12) + 4;
  }
  doc.moveTo(50, y).lineTo(550, y).stroke();
  y += 8;

  const totals: [string, bigint][] = [
    ["Subtotal", invoice.subtotal],
    ["Discount", -invoice.discountTotal],
    ["Tax", invoice.taxTotal],
    ["Total", invoice.total],
    ["Credits applied", -invoice.creditsApplied],
    ...(invoice.creditNotesTotal > 0n
      ? [["Credit notes", -invoice.creditNotesTotal] as [string, bigint]]
      : []),
    ...(invoice.amountPaid > 0n ? [["Paid", -invoice.amountPaid] as [string, bigint]] : []),
    ["Amount due", invoice.amountDue - invoice.amountPaid],
  ];
  doc.fontSize(10);
  for (const [label, amount] of totals) {
    if (y > 760) {
      doc.addPage();
      y = 50;
    }
    doc.font(label === "Total" || label === "Amount due" ? "Helvetica-Bold" : "Helvetica");
    doc.text(label, 330, y, { width: 130, align: "right" });
    doc.text(money(amount, currency), 460, y, { width: 90, align: "right" });
    y += 15;
  }

  if (invoice.taxBreakdown.length > 0 || invoice.taxIncluded > 0n) {
    y += 10;
    doc.font("Helvetica-Bold").text("Tax breakdown", 50, y);
    y += 15;
    doc.font("Helvetica").fontSize(9);
    for (const entry of invoice.taxBreakdown) {
      const how = entry.inclusive ? "included" : "added";
      doc.text(
        `${entry.name} (${entry.jurisdiction}) ${entry.ratePercent}% ${how} on ${money(entry.taxableMinor, currency)}: ${money(entry.taxMinor, currency)}`,
        50,
        y,
      );
      y += 13;
    }
  }
  doc.end();
  return done;
}
