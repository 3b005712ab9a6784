/** Connection URLs are never shown with their password (README, Configuration). */

/** `postgres://u:secret@h/db` -> `postgres://u:***@h/db`. Leaves non-URLs alone. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const k of [...u.searchParams.keys()]) if (/pass/i.test(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return redactText(url);
  }
}

/**
 * Masks anything that looks like a password inside free text (error messages, logs): a
 * URL's, and `password=` in a URL query or key=value conninfo (libpq's form: spaces
 * around `=`, a single-quoted value with `\'` escapes; also such a value inside a JSON
 * string, where the backslash itself is escaped). `PGPASSWORD=` is caught too.
 */
export function redactText(text: string): string {
  return text
    .replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)([^@\s]*)(@)/gi, '$1***$3')
    .replace(/(password\s*=\s*)('(?:\\\\'|\\'|[^'])*?'(?=$|[\s"&,;)\]}])|'(?:\\\\'|\\'|[^'])*'|(?:\\.|[^&\s"'])+)/gi, '$1***');
}
