// Types of runtime.js, for the benchmarks that start the controller with the flags bin/ gives it.
export declare const NODE_FLAGS: Readonly<Record<'agent' | 'controller', readonly string[]>>;
export declare function prepare(command: string): void;
export declare function applyNodeFlags(argv: string[]): void;
