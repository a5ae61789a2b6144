const encoder = new TextEncoder();

/**
 * Whether `text` is longer than `maxBytes` in UTF-8, without encoding it in the common case:
 * a UTF-16 unit is 1–3 UTF-8 bytes, so only text between max/3 and max units is encoded.
 */
export function exceedsBytes(text: string, maxBytes: number): boolean {
  if (text.length > maxBytes) return true;
  if (text.length * 3 <= maxBytes) return false;
  return encoder.encode(text).length > maxBytes;
}
