export { SpendWidget, type SpendWidgetProps } from './SpendWidget.tsx'
export { SpendView, type SpendViewProps, type ThemeName, type ThemeVars } from './SpendView.tsx'
export {
  createClient,
  problemOf,
  WidgetError,
  type Problem,
  type FetchToken,
  type WidgetClient,
  type WidgetSession,
} from './client.ts'
export * from './format.ts'
export { addDecimals, compareDecimals } from './decimal.ts'
export {
  CATALOGS,
  languageFor,
  type Language,
  type Message,
  type MessageKey,
  type MessageOverrides,
  type Messages,
} from './messages.ts'
