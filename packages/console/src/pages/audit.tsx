import { PageHeader } from '../ui.tsx'

export default function Audit() {
  return <PageHeader title="Audit log" />
}
