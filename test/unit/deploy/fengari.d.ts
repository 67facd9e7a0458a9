// Type declarations for the part of fengari (a Lua 5.3 VM in JavaScript) the Argo CD health test uses.
declare module 'fengari' {
  type LuaState = object;
  const fengari: {
    lua: {
      LUA_OK: number;
      lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number;
      lua_tojsstring(L: LuaState, index: number): string | null;
      lua_type(L: LuaState, index: number): number;
      LUA_TSTRING: number;
    };
    lauxlib: {
      luaL_newstate(): LuaState;
      luaL_loadstring(L: LuaState, source: Uint8Array): number;
    };
    lualib: { luaL_openlibs(L: LuaState): void };
    to_luastring(s: string): Uint8Array;
  };
  export default fengari;
}
