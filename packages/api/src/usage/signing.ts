/**
 * The canonical form of a usage event, its signature and its content hash live in the SDK, so
 * what clients sign and what the API verifies can never drift apart.
 */
export {
  canonicalDecimal,
  canonicalEventString,
  contentHash,
  signEvent,
  verifyCanonicalSignature,
} from '@burnrate/sdk/signing'
