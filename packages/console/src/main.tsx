import { createRoot } from 'react-dom/client'
import { App } from './app.tsx'
import './styles.css'

const saved = localStorage.getItem('burnrate-console-theme')
if (saved === 'dark' || saved === 'light') document.documentElement.dataset.theme = saved

createRoot(document.getElementById('root')!).render(<App />)
