import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// The names each package entry exports, values and types alike. A name added to or dropped from
// an entry fails here: widening (or narrowing) the public surface is a deliberate change, made in
// this list in the same commit.
const EXPECTED: Record<string, string[]> = {
  '.': [
    'APPROVAL_EVENTS',
    'ApprovalDecideResult',
    'ApprovalDecision',
    'ApprovalDecisionInput',
    'ApprovalError',
    'ApprovalErrorCode',
    'ApprovalEvent',
    'ApprovalEventName',
    'ApprovalFilter',
    'ApprovalLookup',
    'ApprovalOpenOutcome',
    'ApprovalOpenResult',
    'ApprovalRecord',
    'ApprovalRequest',
    'ApprovalRule',
    'ApprovalStatus',
    'ApprovalStore',
    'ApprovalWaitOptions',
    'Approvals',
    'InMemoryApprovalStore',
    'InMemoryApprovalStoreOptions',
    'StoredApproval',
    'ActionContext',
    'AnchorCheckReport',
    'AnchorCheckpoint',
    'AnchorResult',
    'AnchoredCheckpoint',
    'AuditAnchor',
    'AuditEntry',
    'AuditError',
    'AuditErrorCode',
    'AuditKeys',
    'AuditLog',
    'AuditLogOptions',
    'AuditRecord',
    'AuditRecordType',
    'AuditReport',
    'AuditSink',
    'BatchOptions',
    'ChannelError',
    'ChannelErrorCode',
    'ChargeResult',
    'CheckpointMode',
    'CheckpointRecord',
    'CheckpointSigner',
    'CheckpointVerifier',
    'ConditionSpec',
    'ConfigError',
    'CoreRecord',
    'Counts',
    'CryptoBackendInfo',
    'DriftOptions',
    'ExtensionEntry',
    'ExtensionRecord',
    'ExtensionType',
    'ExternalPermitSignerOptions',
    'Gate',
    'GateEvent',
    'GateOptions',
    'GenesisRecord',
    'GeoLocation',
    'GuardedContext',
    'GuardedOptions',
    'InMemoryBus',
    'InMemoryRateStore',
    'InMemoryReplayStore',
    'InMemorySessionStore',
    'InspectedPermit',
    'InvalidateVerdict',
    'InvalidatedError',
    'InvalidationBus',
    'InvalidationEvent',
    'InvalidationMessage',
    'InvalidationRecord',
    'InvalidationScope',
    'InvariantSpec',
    'IssuedPermit',
    'KavachError',
    'KeyEntry',
    'KeyFileError',
    'KeyFileErrorCode',
    'KeyFileOptions',
    'KeyOptions',
    'KeyPair',
    'KeyRecord',
    'OUTCOMES',
    'ObserveResult',
    'Outcome',
    'OutcomeEntry',
    'OutcomeRecord',
    'PRINCIPAL_KINDS',
    'PermitClaims',
    'PermitError',
    'PermitErrorCode',
    'PermitExpectation',
    'PermitIssuer',
    'PermitRequest',
    'PermitSigner',
    'PermitSignerOptions',
    'PermitVerdict',
    'PermitVerifier',
    'PermitVerifierOptions',
    'PolicyError',
    'PolicyFormat',
    'PolicyReloadEvent',
    'PolicyReloadRecord',
    'PolicySetSpec',
    'PolicySpec',
    'Principal',
    'PrincipalKind',
    'PublicKeyBundle',
    'PublicKeyDirectory',
    'REFUSE_CODES',
    'RawKeys',
    'RateCharge',
    'RateStore',
    'RecordHeader',
    'RecordTypeSchema',
    'RecoveryRecord',
    'RefuseCode',
    'RefuseVerdict',
    'RefusedError',
    'ReplayStore',
    'SecureChannel',
    'SecureChannelOptions',
    'SegmentRecord',
    'SessionObservation',
    'SessionState',
    'SessionStore',
    'SessionStoreOptions',
    'SignatureMode',
    'SignedDirectoryOptions',
    'SigningPool',
    'SigningPoolOptions',
    'StoreUnavailableError',
    'TelemetryOptions',
    'Verdict',
    'VerdictEvent',
    'VerdictRecord',
    'VerifyOptions',
    'buildSignedManifest',
    'canonicalJson',
    'cryptoBackend',
    'formatRefusal',
    'guarded',
    'hashArgs',
    'inspectPermitToken',
    'parsePolicyDocument',
    'parsePolicyText',
    'readAuditLog',
    'verifyAuditLog',
    // result screening and the tool-definition scan (DESIGN §13)
    'DETECTOR_NAMES',
    'SCREEN_MODES',
    'ScreenBlock',
    'ScreenFinding',
    'ScreenMode',
    'ScreenResult',
    'ScreenSpec',
    'TOOL_FINDING_KINDS',
    'ToolFinding',
    'ToolFindingKind',
    'describeWithheld',
    'escapeText',
    'scanToolDefinition',
    'screenOutput',
    'OutcomeEvent',
    'OutputBlockedVerdict',
  ],
  './mcp': [
    'OBSERVED_META_KEY',
    'OutcomeRecord',
    'PERMIT_META_KEY',
    'PermitCarrier',
    'PermitExtra',
    'PrincipalConfig',
    'ProxyConfig',
    'ProxyRefusal',
    'ProxyRuntime',
    'RequirePermitOptions',
    'ServerConfig',
    'TOOL_NAME',
    'VERDICT_META_KEY',
    'exposeNames',
    'loadConfig',
    'parseConfig',
    'parseConfigText',
    'requirePermit',
    'runProxy',
    'startRuntime',
  ],
  './langchain': [
    'ScreenReport',
    'AdapterOptions',
    'ApprovalGateLike',
    'GateDecision',
    'GateLike',
    'KavachApprovalAnswer',
    'KavachApprovalInterrupt',
    'KavachArtifact',
    'KavachMiddlewareOptions',
    'LangChainAdapterOptions',
    'LangChainRunContext',
    'guardTool',
    'guardTools',
    'kavachMiddleware',
  ],
  './ai-sdk': [
    'ScreenReport',
    'AdapterOptions',
    'AiSdkAdapterOptions',
    'AiSdkRunContext',
    'ApprovalGateLike',
    'GateDecision',
    'GateLike',
    'KavachApprovalContext',
    'KavachApprovalResponse',
    'KavachApprovalResponseInput',
    'KavachToolApprovalOptions',
    'ToolApprovalEventLike',
    'ToolApprovalStatusLike',
    'ToolCallRefused',
    'guardTool',
    'guardTools',
    'kavachApprovalResponse',
    'kavachToolApproval',
  ],
  './openai': [
    'ScreenReport',
    'AdapterOptions',
    'GateDecision',
    'GateLike',
    'GateToolCallsOptions',
    'OpenAIAdapterOptions',
    'OpenAIRunContext',
    'ToolHandler',
    'gateToolCalls',
    'guardRunnableTools',
  ],
  './openai-agents': [
    'ScreenReport',
    'AdapterOptions',
    'AgentsAdapterOptions',
    'AgentsRunContext',
    'ApprovalGateLike',
    'ContextOf',
    'FunctionToolLike',
    'GateDecision',
    'GateLike',
    'InterruptionDecision',
    'KavachGuardrailInfo',
    'RunStateLike',
    'decideInterruption',
    'guardTool',
    'guardTools',
    'kavachInputGuardrail',
    'kavachOutputGuardrail',
    'KavachOutputGuardrailInfo',
  ],
  './redis': [
    'BusSigner',
    'BusVerificationKeys',
    'BusVerifier',
    'RedisApprovalStore',
    'RedisApprovalStoreOptions',
    'RedisAuditAnchor',
    'RedisAuditAnchorOptions',
    'RedisClientOrUrl',
    'RedisInvalidationBus',
    'RedisInvalidationBusOptions',
    'RedisRateStore',
    'RedisRateStoreOptions',
    'RedisReplayStore',
    'RedisReplayStoreOptions',
    'RedisSessionStore',
    'RedisSessionStoreOptions',
    'RedisStoreOptions',
    'failFastRedisOptions',
    'keyPairSigner',
    'keysVerifier',
  ],
};

const ROOT = resolve(import.meta.dirname, '..');

/**
 * The names a module exports, read from its syntax (no type checker: the adapters' framework
 * types would make that take tens of seconds). An `export *` is an error: every name is listed.
 */
function exportedNames(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
  const names: string[] = [];
  const exported = (node: ts.Node) =>
    ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
  for (const statement of source.statements) {
    if (ts.isExportDeclaration(statement)) {
      const clause = statement.exportClause;
      if (clause === undefined) throw new Error(`${file}: export * hides what the module exports; name each export`);
      if (ts.isNamespaceExport(clause)) names.push(clause.name.text);
      else for (const specifier of clause.elements) names.push(specifier.name.text);
    } else if (ts.isExportAssignment(statement)) {
      names.push('default');
    } else if (exported(statement)) {
      if (ts.isVariableStatement(statement)) {
        for (const declaration of statement.declarationList.declarations) names.push(declaration.name.getText(source));
      } else if (
        (ts.isFunctionDeclaration(statement) ||
          ts.isClassDeclaration(statement) ||
          ts.isInterfaceDeclaration(statement) ||
          ts.isTypeAliasDeclaration(statement) ||
          ts.isEnumDeclaration(statement)) &&
        statement.name !== undefined
      ) {
        names.push(statement.name.text);
      } else {
        throw new Error(`${file}: an export this test cannot name (${ts.SyntaxKind[statement.kind]})`);
      }
    }
  }
  return [...new Set(names)].sort();
}

/** package.json `exports`: subpath -> the source file its `default` is built from. */
function packageEntries(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> };
  return Object.fromEntries(
    Object.entries(pkg.exports).map(([subpath, target]) => [
      subpath,
      join(ROOT, target.default.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts')),
    ]),
  );
}

describe('public surface', () => {
  it('has an expected export list for every package entry', () => {
    expect(Object.keys(packageEntries()).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [subpath, file] of Object.entries(packageEntries())) {
    it(`exports exactly the expected names from ${subpath === '.' ? 'kavach' : `kavach${subpath.slice(1)}`}`, () => {
      expect(exportedNames(file)).toEqual([...(EXPECTED[subpath] ?? [])].sort());
    });
  }

  it('names in kavach exactly what the engine, crypto and audit indexes export', () => {
    const areas = ['engine', 'crypto', 'audit'].flatMap((area) => exportedNames(join(ROOT, 'src', area, 'index.ts')));
    expect(exportedNames(join(ROOT, 'src/index.ts'))).toEqual([...new Set(areas)].sort());
  });

  it('leaves internals out of kavach', () => {
    const names = exportedNames(join(ROOT, 'src/index.ts'));
    for (const internal of [
      'CONTEXT_LIMITS',
      'validateContext',
      'ValidContext',
      'ContextError',
      'retryAfter',
      'MAX_RECENT',
      'MaybePromise',
      'signEnvelope',
      'verifyEnvelope',
    ]) {
      expect(names).not.toContain(internal);
    }
  });

  it('keeps every secret key off KeyPair: no static or instance accessor in its declaration', () => {
    const file = join(ROOT, 'src/crypto/keys.ts');
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
    const keyPair = source.statements.find((s): s is ts.ClassDeclaration => ts.isClassDeclaration(s) && s.name?.text === 'KeyPair');
    expect(keyPair).toBeDefined();
    const members = (keyPair as ts.ClassDeclaration).members
      .filter((m) => m.name !== undefined && !ts.isPrivateIdentifier(m.name))
      .map((m) => (m.name as ts.Identifier).text);
    // fromRawKeys takes secret bytes in; nothing gives one out but toSecretBytes/save (deliberate, documented).
    expect(members.sort()).toEqual([
      'createdAt',
      'expiresAt',
      'fromRawKeys',
      'fromSecretBytes',
      'generate',
      'isExpired',
      'kid',
      'load',
      'publicKeys',
      'save',
      'toSecretBytes',
    ]);
  });
});
