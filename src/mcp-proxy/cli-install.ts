export async function installCommand(_sub: string, _argv: string[]): Promise<number> { process.stderr.write("not yet\n"); return 2; }
