// Runs an Argo CD resource health script in a real Lua VM (fengari), the way Argo CD does: the
// resource is the global `obj`, and the script returns a table with `status` and `message`.
import fengari from 'fengari';

const { lua, lauxlib, lualib, to_luastring } = fengari;

/** A JSON value as a Lua constructor expression; null becomes nil, as Argo CD's JSON → Lua does. */
export function luaLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  if (typeof value === 'string') {
    // Decimal escapes for every byte outside printable ASCII, so any string round-trips.
    let out = '"';
    for (const byte of new TextEncoder().encode(value)) {
      const ch = String.fromCharCode(byte);
      out += byte >= 0x20 && byte < 0x7f && ch !== '"' && ch !== '\\' ? ch : `\\${byte}`;
    }
    return `${out}"`;
  }
  if (Array.isArray(value)) return `{${value.map(luaLiteral).join(', ')}}`;
  const fields = Object.entries(value as Record<string, unknown>).map(
    ([k, v]) => `[${luaLiteral(k)}] = ${luaLiteral(v)}`,
  );
  return `{${fields.join(', ')}}`;
}

export interface HealthStatus {
  status: string;
  message: string;
}

/** Runs `script` against `obj` and returns what it reports. Throws with Lua's message on an error. */
export function runHealthScript(script: string, obj: unknown): HealthStatus {
  const source = [
    `obj = ${luaLiteral(obj)}`,
    'local function check()',
    script,
    'end',
    'local hs = check()',
    'return hs.status, hs.message',
  ].join('\n');
  const L = lauxlib.luaL_newstate();
  lualib.luaL_openlibs(L);
  if (lauxlib.luaL_loadstring(L, to_luastring(source)) !== lua.LUA_OK) {
    throw new Error(`the health script does not compile: ${lua.lua_tojsstring(L, -1)}`);
  }
  if (lua.lua_pcall(L, 0, 2, 0) !== lua.LUA_OK) {
    throw new Error(`the health script failed: ${lua.lua_tojsstring(L, -1)}`);
  }
  const status = lua.lua_type(L, -2) === lua.LUA_TSTRING ? lua.lua_tojsstring(L, -2) : null;
  const message = lua.lua_type(L, -1) === lua.LUA_TSTRING ? lua.lua_tojsstring(L, -1) : null;
  if (status === null) throw new Error('the health script returned no status string');
  return { status, message: message ?? '' };
}
