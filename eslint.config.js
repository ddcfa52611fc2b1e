import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const API = 'packages/api/src'

// ---- The layers of packages/api (docs/architecture.md), enforced.
// SQL has one home per domain: only these files import 'kysely' (or use sql``).
const SQL_HOMES = [`${API}/**/repository.ts`, `${API}/**/repository/**`, `${API}/db/**`]
// GraphQL stays in the schema layer and the transports: services and repositories never import it.
const GRAPHQL_HOMES = [
  `${API}/schema/**`,
  `${API}/**/schema.ts`,
  `${API}/**/schema/**`,
  `${API}/http/**`,
  `${API}/app.ts`,
  `${API}/server.ts`,
  `${API}/index.ts`,
  // Transports: SSE / graphql-ws / Redis fan-out, and the yoga pubsub they share with services.
  `${API}/subscriptions/**`,
  `${API}/pubsub.ts`,
]
// Wiring that may reach the db handle directly (everything else goes through a service).
const COMPOSITION = [
  `${API}/services.ts`,
  `${API}/loaders.ts`,
  `${API}/main.ts`,
  `${API}/runtime.ts`,
  `${API}/demo/**`,
  `${API}/cli/**`,
]

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.data/**', '**/*.graphql', 'test/.artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    files: [`${API}/**/*.ts`],
    ignores: SQL_HOMES,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'kysely',
              message:
                'SQL lives in <domain>/repository.ts (or repository/): call a repository function. Types: Db, Executor, Tx from db/database.ts; row types from db/types.ts.',
            },
          ],
          patterns: [{ group: ['kysely/*'], message: 'SQL lives in <domain>/repository.ts (or repository/).' }],
        },
      ],
    },
  },
  {
    files: [`${API}/**/*.ts`],
    ignores: GRAPHQL_HOMES,
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['graphql', 'graphql/*', 'graphql-yoga', '@pothos/*'],
              message:
                'Services and repositories know nothing of GraphQL: throw a DomainError (shared/errors.ts); schema/errors.ts maps it.',
            },
            {
              group: ['**/schema.ts', '**/schema/*'],
              message: 'Only the schema layer imports schema modules; move what you need to the domain or shared/.',
            },
          ],
        },
      ],
    },
  },
  {
    files: [`${API}/**/*.ts`],
    ignores: COMPOSITION,
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[property.name='db'][object.property.name='services']",
          message: 'Resolvers and routes call a service; only services and repositories use the db.',
        },
        {
          selector: "VariableDeclarator[init.property.name='services'] > ObjectPattern > Property[key.name='db']",
          message: 'Resolvers and routes call a service; only services and repositories use the db.',
        },
      ],
    },
  },
  {
    // Queries are built in repositories only, also through an injected db handle (no import needed).
    files: [`${API}/**/*.ts`],
    ignores: SQL_HOMES,
    rules: {
      'no-restricted-properties': [
        'error',
        ...['selectFrom', 'insertInto', 'updateTable', 'deleteFrom', 'mergeInto', 'selectNoFrom'].map((property) => ({
          property,
          message: 'Queries live in <domain>/repository.ts (or repository/): call a repository function.',
        })),
      ],
    },
  },
  {
    // GraphQL responses in tests are checked by assertions, not by types.
    files: ['**/test/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // The widget's and the SDK's build scripts, and the repository's scripts/, are plain Node ESM.
    files: [
      'packages/widget/scripts/**/*.mjs',
      'packages/console/scripts/**/*.mjs',
      'packages/sdk/scripts/**/*.mjs',
      'scripts/**/*.mjs',
    ],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
)
