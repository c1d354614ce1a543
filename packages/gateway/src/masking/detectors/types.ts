/** A detected span in the input: [start, end) in UTF-16 code units, like String.slice. */
export interface Match {
  start: number;
  end: number;
  kind: string;
}

export type Detect = (text: string) => Match[];

/** True when the character at i exists and is an ASCII letter, digit or underscore. */
export function isWordAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}
