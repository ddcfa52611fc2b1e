import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { DuckDBInstance } from '@duckdb/node-api'
import S3rver from 's3rver'

/**
 * An S3-speaking server in the test process (s3rver: PutObject, multipart, GetObject, HeadObject,
 * ListObjectsV2 in the real wire format) with one bucket, and a client of the real AWS SDK aimed at it.
 */
export async function startFakeS3(bucket = 'burnrate-exports') {
  const directory = await mkdtemp(join(tmpdir(), 'burnrate-s3rver-'))
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    configureBuckets: [{ name: bucket, configs: [] }],
  })
  const { port } = await server.run()
  const endpoint = `http://127.0.0.1:${port}`
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials })
  return {
    endpoint,
    bucket,
    client,
    /** The EXPORT_S3_* settings that reach this server. */
    config: {
      EXPORT_S3_ENDPOINT: endpoint,
      EXPORT_S3_REGION: 'us-east-1',
      EXPORT_S3_BUCKET: bucket,
      EXPORT_S3_ACCESS_KEY_ID: credentials.accessKeyId,
      EXPORT_S3_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      EXPORT_S3_FORCE_PATH_STYLE: true,
    },
    /** Every key under `prefix`. */
    async keys(prefix: string): Promise<string[]> {
      const keys: string[] = []
      let token: string | undefined
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        )
        keys.push(...(page.Contents ?? []).map((o) => o.Key!))
        token = page.NextContinuationToken
      } while (token)
      return keys.sort()
    },
    /** Downloads every object under `prefix/` into a new local folder (keys relative to the prefix). */
    async download(prefix: string): Promise<string> {
      const local = await mkdtemp(join(tmpdir(), 'burnrate-s3-download-'))
      const base = prefix.replace(/\/+$/, '') + '/'
      for (const key of await this.keys(base)) {
        const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        const path = join(local, key.slice(base.length))
        await mkdir(dirname(path), { recursive: true })
        await writeFile(path, await object.Body!.transformToByteArray())
      }
      return local
    },
    async close() {
      client.destroy()
      await server.close()
      await rm(directory, { recursive: true, force: true })
    },
  }
}

/** Count and exact sums (as DuckDB prints its DECIMAL sums) of the Parquet files of one dataset of an export. */
export async function readBackParquet(
  directory: string,
  dataset: 'usage_events' | 'line_items',
): Promise<{ rows: number; amount: string; cost: string }> {
  const duck = await DuckDBInstance.create(':memory:')
  const conn = await duck.connect()
  try {
    const path = join(directory, dataset, '**', '*.parquet').replaceAll("'", "''")
    const r = await conn.runAndReadAll(
      `select count(*)::varchar as n, coalesce(sum(amount), 0)::varchar as amount, coalesce(sum(cost), 0)::varchar as cost
       from read_parquet('${path}')`,
    )
    const row = r.getRowObjects()[0] as { n: string; amount: string; cost: string }
    return { rows: Number(row.n), amount: row.amount, cost: row.cost }
  } finally {
    conn.closeSync()
    duck.closeSync()
  }
}
