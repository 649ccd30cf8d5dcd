// What a TypeScript submission may use besides the ES2022 library: node's CommonJS globals, loosely typed.
declare const console: {
  log(...data: unknown[]): void;
  info(...data: unknown[]): void;
  debug(...data: unknown[]): void;
  warn(...data: unknown[]): void;
  error(...data: unknown[]): void;
};
declare const require: { (name: string): any; main: unknown };
declare const process: any;
declare const module: { exports: any };
declare const exports: any;
