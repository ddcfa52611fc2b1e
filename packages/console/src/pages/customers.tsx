import { useState } from 'react'
import { Link, useLocation } from 'wouter'
import { PageHeader, Section } from '../ui.tsx'

/** Customers by id (a searchable list with this period's figures needs the API's customers query). */
export default function Customers() {
  const [, navigate] = useLocation()
  const [id, setId] = useState('')
  return (
    <>
      <PageHeader title="Customers" />
      <Section title="Open a customer">
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault()
            if (id.trim()) navigate(`/customers/${encodeURIComponent(id.trim())}`)
          }}
        >
          <label htmlFor="cid">Customer id</label>
          <input id="cid" value={id} onChange={(e) => setId(e.target.value)} />
          <button type="submit">Open</button>
        </form>
        <p className="muted">
          For example the demo customer: <Link href="/customers/demo-lumen">demo-lumen</Link>.
        </p>
      </Section>
    </>
  )
}
