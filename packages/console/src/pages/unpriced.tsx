import { PageHeader } from '../ui.tsx'

export default function Unpriced() {
  return <PageHeader title="Unpriced" />
}
