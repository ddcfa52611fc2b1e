import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import type { Config } from '../config.ts'
import { badInput } from '../shared/errors.ts'

/** Where an export's files end up: a local folder, or a prefix in an S3-compatible bucket. */
export type Destination = { kind: 'local'; directory: string } | { kind: 's3'; bucket: string; prefix: string }

export type S3Settings = Pick<
  Config,
  | 'EXPORT_S3_ENDPOINT'
  | 'EXPORT_S3_REGION'
  | 'EXPORT_S3_BUCKET'
  | 'EXPORT_S3_PREFIX'
  | 'EXPORT_S3_ACCESS_KEY_ID'
  | 'EXPORT_S3_SECRET_ACCESS_KEY'
  | 'EXPORT_S3_FORCE_PATH_STYLE'
>

/** `s3://bucket/some/prefix` → an S3 destination; anything else is a local directory. */
export function parseDestination(out: string): Destination {
  if (!out.startsWith('s3://')) return { kind: 'local', directory: out }
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(out)
  if (!match) throw badInput(`${JSON.stringify(out)} is not s3://<bucket>/<prefix>`, 'out')
  return { kind: 's3', bucket: match[1]!, prefix: (match[2] ?? '').replace(/^\/+|\/+$/g, '') }
}

export const describeDestination = (d: Destination) =>
  d.kind === 'local' ? d.directory : `s3://${d.bucket}/${d.prefix ? `${d.prefix}/` : ''}`

/** The S3 client the settings describe (endpoint for MinIO, R2, Ceph…; path-style addressing when asked). */
export function createS3Client(settings: S3Settings): S3Client {
  return new S3Client({
    region: settings.EXPORT_S3_REGION,
    ...(settings.EXPORT_S3_ENDPOINT ? { endpoint: settings.EXPORT_S3_ENDPOINT } : {}),
    forcePathStyle: settings.EXPORT_S3_FORCE_PATH_STYLE,
    ...(settings.EXPORT_S3_ACCESS_KEY_ID && settings.EXPORT_S3_SECRET_ACCESS_KEY
      ? {
          credentials: {
            accessKeyId: settings.EXPORT_S3_ACCESS_KEY_ID,
            secretAccessKey: settings.EXPORT_S3_SECRET_ACCESS_KEY,
          },
        }
      : {}),
  })
}

const keyOf = (prefix: string, path: string) => (prefix ? `${prefix}/${path}` : path)

/** Whether anything is stored under `prefix/` (a run folder already used). */
export async function s3PrefixUsed(client: S3Client, bucket: string, prefix: string): Promise<boolean> {
  const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }))
  return (listed.KeyCount ?? listed.Contents?.length ?? 0) > 0
}

/**
 * Uploads `files` (paths relative to `directory`, in order: manifest.json last, so its presence means the
 * export is complete) under the destination's prefix, multipart for large files, then checks with
 * HeadObject that each object holds exactly the bytes of its file.
 */
export async function uploadFiles(
  client: S3Client,
  destination: { bucket: string; prefix: string },
  directory: string,
  files: string[],
): Promise<void> {
  for (const file of files) {
    const path = join(directory, file)
    const size = (await stat(path)).size
    const Key = keyOf(destination.prefix, file)
    await new Upload({
      client,
      params: {
        Bucket: destination.bucket,
        Key,
        Body: createReadStream(path),
        ContentType: file.endsWith('.json') ? 'application/json' : file.endsWith('.csv') ? 'text/csv' : undefined,
      },
    }).done()
    const head = await client.send(new HeadObjectCommand({ Bucket: destination.bucket, Key }))
    if (head.ContentLength !== size)
      throw new Error(`s3://${destination.bucket}/${Key} holds ${head.ContentLength} bytes, the file ${size}`)
  }
}
