// The two parts of undici the engine uses, by their files: undici's index loads fetch,
// WebSocket, caches and mocks too, which the engine would parse at start and initialise
// before its first forwarded request (tens of milliseconds of the boundary's setup).
declare module 'undici/lib/dispatcher/pool.js' {
  import type { Pool } from 'undici';
  const PoolClass: typeof Pool;
  export = PoolClass;
}

declare module 'undici/lib/api/api-request.js' {
  import type { Dispatcher } from 'undici';
  function request(
    this: Dispatcher,
    options: Dispatcher.RequestOptions,
  ): Promise<Dispatcher.ResponseData>;
  export = request;
}
