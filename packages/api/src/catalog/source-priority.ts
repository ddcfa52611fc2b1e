// The source priority is catalog-sync's: the CLI's conflict count and the API rank sources alike.
export { SOURCE_PRIORITY, sourceRank } from '@burnrate/catalog-sync'
