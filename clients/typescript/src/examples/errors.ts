/**
 * The gateway's error details, read from a gRPC error's trailers.
 *
 * Every gateway error carries a `google.rpc.Status` in the `grpc-status-details-bin`
 * trailer, whose details hold a `google.rpc.ErrorInfo` (a stable `reason` such as
 * `ORDER_ALREADY_TERMINAL`, plus metadata) or a `google.rpc.BadRequest` (one
 * violation per bad field). Branch on the reason, never on the message text.
 *
 * These three messages are small and stable, so they are decoded here with the
 * protobuf wire reader rather than generating all of googleapis for them.
 */
import { BinaryReader } from "@bufbuild/protobuf/wire";
import type { ServiceError } from "@grpc/grpc-js";

const DETAILS_TRAILER = "grpc-status-details-bin";
const ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo";
const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";

export interface ErrorInfo {
  reason: string;
  domain: string;
  metadata: Record<string, string>;
}

export interface FieldViolation {
  field: string;
  description: string;
}

export interface GatewayErrorDetails {
  errorInfo?: ErrorInfo;
  fieldViolations: FieldViolation[];
}

/** Decode the details of `error`; empty when it carries none (e.g. a transport error). */
export function errorDetails(error: ServiceError): GatewayErrorDetails {
  const found: GatewayErrorDetails = { fieldViolations: [] };
  const [raw] = error.metadata?.get(DETAILS_TRAILER) ?? [];
  if (!(raw instanceof Uint8Array)) return found;
  // google.rpc.Status: 1 code, 2 message, 3 repeated google.protobuf.Any details.
  forEachField(raw, (field, reader) => {
    if (field !== 3) return false;
    const any = decodeAny(reader.bytes());
    if (any.typeUrl === ERROR_INFO) found.errorInfo = decodeErrorInfo(any.value);
    if (any.typeUrl === BAD_REQUEST) found.fieldViolations.push(...decodeBadRequest(any.value));
    return true;
  });
  return found;
}

/** The ErrorInfo reason of a gateway error, or undefined. */
export function errorReason(error: ServiceError): string | undefined {
  return errorDetails(error).errorInfo?.reason;
}

/** Visit each field; `visit` reads the fields it wants and returns false to skip the rest. */
function forEachField(bytes: Uint8Array, visit: (field: number, reader: BinaryReader) => boolean) {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (!visit(field, reader)) reader.skip(wireType, field);
  }
}

function decodeAny(bytes: Uint8Array): { typeUrl: string; value: Uint8Array } {
  let typeUrl = "";
  let value: Uint8Array = new Uint8Array();
  forEachField(bytes, (field, reader) => {
    if (field === 1) typeUrl = reader.string();
    else if (field === 2) value = reader.bytes();
    else return false;
    return true;
  });
  return { typeUrl, value };
}

function decodeErrorInfo(bytes: Uint8Array): ErrorInfo {
  const info: ErrorInfo = { reason: "", domain: "", metadata: {} };
  forEachField(bytes, (field, reader) => {
    if (field === 1) info.reason = reader.string();
    else if (field === 2) info.domain = reader.string();
    else if (field === 3) {
      // map<string, string> entries: 1 key, 2 value.
      let key = "";
      let value = "";
      forEachField(reader.bytes(), (entryField, entry) => {
        if (entryField === 1) key = entry.string();
        else if (entryField === 2) value = entry.string();
        else return false;
        return true;
      });
      info.metadata[key] = value;
    } else return false;
    return true;
  });
  return info;
}

function decodeBadRequest(bytes: Uint8Array): FieldViolation[] {
  const violations: FieldViolation[] = [];
  forEachField(bytes, (field, reader) => {
    if (field !== 1) return false;
    const violation: FieldViolation = { field: "", description: "" };
    forEachField(reader.bytes(), (part, inner) => {
      if (part === 1) violation.field = inner.string();
      else if (part === 2) violation.description = inner.string();
      else return false;
      return true;
    });
    violations.push(violation);
    return true;
  });
  return violations;
}
