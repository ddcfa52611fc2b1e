// The source priority is catalog-sync's: the CLI's conflict count and the API rank sources alike.
export { sourceRank } from '@burnrate/catalog-sync'
