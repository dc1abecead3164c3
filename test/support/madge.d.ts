/** The part of madge's API (https://github.com/pahen/madge) the architecture test uses. */
declare module 'madge' {
  interface MadgeResult {
    obj(): Record<string, string[]>;
    circular(): string[][];
  }
  export default function madge(paths: string | string[], config?: { fileExtensions?: string[]; tsConfig?: string }): Promise<MadgeResult>;
}
