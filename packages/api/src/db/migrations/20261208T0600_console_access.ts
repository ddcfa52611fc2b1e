import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // API keys with a role. Looked up by hash on every request, before the tenant is known, like
  // tenants: a reference table (src/ledger/citus.ts).
  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('key_prefix', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('ADMIN', 'READ_ONLY')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('revoked_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('api_keys_tenant').on('api_keys').columns(['tenant_id', 'created_at']).execute()
  // Every existing tenant key becomes an ADMIN key named "default", with the same hash: it keeps working.
  await sql`
    insert into api_keys (id, tenant_id, key_hash, key_prefix, name, role, created_at)
    select 'key_' || substr(md5(id || api_key_hash), 1, 16), id, api_key_hash, api_key_prefix, 'default', 'ADMIN', created_at
    from tenants`.execute(db)

  // Console sign-ins: the cookie's value is known only to the browser; its SHA-256 is the key.
  await db.schema
    .createTable('console_sessions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('key_id', 'text', (c) => c.notNull().references('api_keys.id'))
    .addColumn('csrf_token', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('console_sessions_key').on('console_sessions').column('key_id').execute()

  // Who changed money or configuration, when, and what it was before and after.
  await db.schema
    .createTable('audit_log')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('actor_key_id', 'text')
    .addColumn('actor_key_name', 'text')
    .addColumn('actor_role', 'text')
    .addColumn('actor_auth_method', 'text')
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('entity_type', 'text', (c) => c.notNull())
    .addColumn('entity_id', 'text')
    .addColumn('before', 'jsonb')
    .addColumn('after', 'jsonb')
    .addColumn('request_id', 'text')
    .addPrimaryKeyConstraint('audit_log_pk', ['tenant_id', 'id'])
    .execute()
  await db.schema.createIndex('audit_log_tenant_at').on('audit_log').columns(['tenant_id', 'at', 'id']).execute()
  await db.schema
    .createIndex('audit_log_tenant_entity')
    .on('audit_log')
    .columns(['tenant_id', 'entity_type', 'entity_id', 'at'])
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_log').execute()
  await db.schema.dropTable('console_sessions').execute()
  await db.schema.dropTable('api_keys').execute()
}
