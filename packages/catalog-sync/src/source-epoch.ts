/**
 * The start a source gives a price it states no date for: genai-prices' base prices (what it
 * charges for any timestamp), and every OpenRouter and LiteLLM price. A row starting here says
 * "this is the price", never "this has been the price since then"; any other start is a date the
 * source stated (a genai-prices start_date, an override's effectiveFrom).
 */
export const SOURCE_EPOCH = new Date('1970-01-01T00:00:00Z')
