/**
 * EC2 Query API XML, read with `npm:fast-xml-parser` and
 * normalized: every value stays a string (ids, codes and tag values are never
 * coerced to numbers), and `<set><item/></set>` reads as an array whether it
 * holds zero, one or many items.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { XMLParser, XMLValidator } from "fast-xml-parser";

/** A parsed XML element: child name → child (string, element, or array of them). */
export type XmlNode = Record<string, unknown>;

/**
 * Parse an EC2 response body. Attributes and namespaces are dropped.
 *
 * @example
 * ```ts
 * import { parseXml } from "./xml.ts";
 * const doc = await parseXml("<R><requestId>1</requestId></R>");
 * ```
 */
// deno-lint-ignore require-await -- a rejected promise (not a throw) for bad XML, as before
export async function parseXml(text: string): Promise<XmlNode> {
  if (XMLValidator.validate(text) !== true) {
    throw new CrabboxError(
      "provider",
      "aws_bad_response",
      "EC2 returned a response that is not XML",
    );
  }
  const parser = new XMLParser({
    ignoreAttributes: true,
    removeNSPrefix: true,
    parseTagValue: false,
    trimValues: true,
    ignoreDeclaration: true,
    processEntities: true,
  });
  const doc = parser.parse(text);
  return node(doc);
}

/** `v` as an element (empty object for strings, undefined, arrays). */
export function node(v: unknown): XmlNode {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? v as XmlNode : {};
}

/** The string content of an element (`undefined` when absent or not text). */
export function text(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

/**
 * The `<item>` children of a set element as an array. Handles every shape a
 * parser produces: absent, self-closing (`""`), one item (an object), many
 * items (an array).
 *
 * @example
 * ```ts
 * import { items } from "./xml.ts";
 * items({ item: { instanceId: "i-1" } }).length; // 1
 * items({ item: [{}, {}] }).length; // 2
 * items(""); // []
 * ```
 */
export function items(set: unknown): XmlNode[] {
  const it = node(set).item;
  if (it === undefined || it === null || it === "") return [];
  return (Array.isArray(it) ? it : [it]).map(node);
}

/**
 * The root element of a response, by name (`DescribeInstancesResponse`).
 * A different root is a malformed response.
 */
export function root(doc: XmlNode, name: string): XmlNode {
  const r = doc[name];
  if (r === undefined) {
    throw new CrabboxError(
      "provider",
      "aws_bad_response",
      `EC2 answered without <${name}> (got <${Object.keys(doc)[0] ?? "nothing"}>)`,
    );
  }
  return node(r);
}

/** `<tagSet>` as a plain map. */
export function tagMap(tagSet: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of items(tagSet)) {
    const k = text(t.key);
    if (k !== undefined) out[k] = text(t.value) ?? "";
  }
  return out;
}

/** An EC2 error: `<Response><Errors><Error><Code>…` (first error). */
export interface Ec2ErrorBody {
  /** Error code, e.g. `AuthFailure`. */
  code: string;
  /** Message. */
  message: string;
  /** Request id, for support. */
  requestId?: string;
}

/**
 * Read an EC2 error document; `undefined` when the body is not one.
 *
 * @example
 * ```ts
 * import { parseEc2Error } from "./xml.ts";
 * await parseEc2Error("<Response><Errors><Error><Code>AuthFailure</Code><Message>no</Message></Error></Errors></Response>");
 * ```
 */
export async function parseEc2Error(body: string): Promise<Ec2ErrorBody | undefined> {
  let doc: XmlNode;
  try {
    doc = await parseXml(body);
  } catch {
    return undefined;
  }
  const res = node(doc.Response);
  const errs = node(res.Errors).Error;
  const first = node(Array.isArray(errs) ? errs[0] : errs);
  const code = text(first.Code);
  if (!code) return undefined;
  return {
    code,
    message: text(first.Message) ?? "",
    requestId: text(res.RequestID) ?? text(res.RequestId),
  };
}
