import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/engine/errors.ts';
import { parseConfigText } from '../../src/mcp-proxy/config.ts';

const BASE = '[gate]\npolicy = "p.toml"\n[servers.fs]\ncommand = "node"\n';
const parse = (text: string, env: Record<string, string> = {}) =>
  parseConfigText(`${BASE}${text}`, 'toml', { file: '/etc/kavach/kavach.toml', env });

function errorOf(text: string): ConfigError {
  try {
    parse(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('[telemetry] config', () => {
  it('reads the OTLP endpoint (trailing slash dropped), headers with ${VAR}, service name and Prometheus address', () => {
    const config = parse(
      '[telemetry]\notlp_endpoint = "http://127.0.0.1:4318/"\notlp_headers = { "x-api-key" = "${KEY}" }\nservice_name = "gate-eu"\nprometheus = "127.0.0.1:9464"\nexport_interval = "5s"\n',
      { KEY: 'k1' },
    );
    expect(config.telemetry).toEqual({
      otlpEndpoint: 'http://127.0.0.1:4318',
      otlpHeaders: { 'x-api-key': 'k1' },
      serviceName: 'gate-eu',
      exportIntervalMs: 5000,
      prometheus: { host: '127.0.0.1', port: 9464 },
    });
  });

  it('defaults: service kavach-mcp, a 15 s export interval; no table, no telemetry', () => {
    expect(parse('[telemetry]\nprometheus = "9464"\n').telemetry).toEqual({
      otlpHeaders: {},
      serviceName: 'kavach-mcp',
      exportIntervalMs: 15_000,
      prometheus: { host: '127.0.0.1', port: 9464 },
    });
    expect(parse('').telemetry).toBeUndefined();
  });

  it('refuses a non-loopback Prometheus address unless prometheus_public says so', () => {
    const err = errorOf('[telemetry]\nprometheus = "0.0.0.0:9464"\n');
    expect(err.path).toBe('telemetry.prometheus');
    expect(err.message).toContain('prometheus_public = true');
    expect(parse('[telemetry]\nprometheus = "0.0.0.0:9464"\nprometheus_public = true\n').telemetry?.prometheus).toEqual({
      host: '0.0.0.0',
      port: 9464,
    });
    for (const loopback of ['127.0.0.2:9464', '[::1]:9464', 'localhost:9464'])
      expect(parse(`[telemetry]\nprometheus = "${loopback}"\n`).telemetry?.prometheus?.port).toBe(9464);
  });

  it('refuses a table that emits nothing, port 0, a bad endpoint and unknown keys', () => {
    expect(errorOf('[telemetry]\nservice_name = "x"\n').message).toContain('needs otlp_endpoint, prometheus');
    expect(errorOf('[telemetry]\nprometheus = "127.0.0.1:0"\n').message).toContain('fixed port');
    expect(errorOf('[telemetry]\notlp_endpoint = "grpc://collector:4317"\n').path).toBe('telemetry.otlp_endpoint');
    expect(errorOf('[telemetry]\nprometheus = "9464"\notlp_endpiont = "http://x"\n').message).toContain('did you mean');
  });
});
