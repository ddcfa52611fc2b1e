/**
 * Everything lives in the shadow root: nothing leaks out, and the host page's rules cannot reach
 * in (`all: initial` on the root also stops inherited properties such as a host's font-size or
 * color). Sizes are px, never rem (rem follows the host page's root font size). Theme through the
 * public custom properties below, set on the element (`burnrate-spend { --br-accent: teal }`).
 */
export const CSS = `
:host{display:block;contain:content}
:host([hidden]){display:none}
.br{all:initial;display:block;box-sizing:border-box;
--_font:var(--br-font-family,ui-sans-serif,system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif);
--_bg:var(--br-background,#fff);--_surface:var(--br-surface,#f7f7f9);--_fg:var(--br-text,#16181d);
--_muted:var(--br-muted,#5d6470);--_border:var(--br-border,#e3e5ea);--_accent:var(--br-accent,#4f46e5);
--_warn:var(--br-warning,#a16207);--_over:var(--br-danger,#b91c1c);--_ok:var(--br-success,#15803d);
--_radius:var(--br-radius,10px);--_focus:var(--br-focus,#2563eb);
font:400 13px/1.45 var(--_font);color:var(--_fg);background:var(--_bg);border:1px solid var(--_border);
border-radius:var(--_radius);padding:16px;text-align:left;letter-spacing:normal;word-spacing:normal;
text-transform:none;text-shadow:none;font-variant-numeric:tabular-nums;-webkit-font-smoothing:antialiased}
.br[data-theme=dark]{--_bg:var(--br-background,#15171c);--_surface:var(--br-surface,#1e2128);--_fg:var(--br-text,#eceef2);
--_muted:var(--br-muted,#a2a8b3);--_border:var(--br-border,#2c3039);--_accent:var(--br-accent,#8b85ff);
--_warn:var(--br-warning,#facc15);--_over:var(--br-danger,#f87171);--_ok:var(--br-success,#4ade80)}
.br *,.br *::before,.br *::after{box-sizing:border-box;font:inherit;color:inherit;letter-spacing:inherit;margin:0;padding:0}
.br h2{font-size:15px;font-weight:600;line-height:1.3}
.br h3{font-size:12px;font-weight:600;color:var(--_muted);text-transform:uppercase;letter-spacing:.04em;margin:0 0 8px}
.br button{cursor:pointer;background:none;border:0;border-radius:6px;text-align:inherit}
.br :focus-visible{outline:2px solid var(--_focus);outline-offset:2px}
.br ul,.br ol{list-style:none}
.hd{display:flex;align-items:baseline;justify-content:space-between;gap:8px;margin-bottom:12px;flex-wrap:wrap}
.sub{color:var(--_muted);font-size:12px}
.live{display:inline-flex;align-items:center;gap:6px;font-size:12px;color:var(--_muted)}
.live i{width:7px;height:7px;border-radius:50%;background:var(--_ok);display:inline-block}
.live[data-off] i{background:var(--_muted)}
.card{background:var(--_surface);border-radius:calc(var(--_radius) - 2px);padding:12px;margin-bottom:12px}
.big{font-size:26px;font-weight:650;line-height:1.15}
.of{color:var(--_muted);margin-left:6px}
.bar{position:relative;height:10px;border-radius:5px;background:var(--_border);margin:22px 0 6px}
.fill{position:absolute;inset:0 auto 0 0;border-radius:5px;background:var(--_accent);max-width:100%}
.bar[data-level=warn] .fill{background:var(--_warn)}
.bar[data-level=over] .fill{background:var(--_over)}
.tick{position:absolute;top:-4px;bottom:-4px;width:2px;margin-left:-1px;background:color-mix(in srgb,var(--_fg) 55%,transparent)}
.tick span{position:absolute;bottom:16px;left:50%;transform:translateX(-50%);font-size:11px;color:var(--_muted);white-space:nowrap}
.tick[data-edge=end] span{left:auto;right:0;transform:none}
.tick[data-edge=start] span{left:0;transform:none}
.tick[data-crossed] span{color:var(--_fg);font-weight:600}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(96px,1fr));gap:8px;margin-top:12px}
.stats dt{font-size:11px;color:var(--_muted)}
.stats dd{font-size:15px;font-weight:600;white-space:nowrap}
.stats dd[data-level=over]{color:var(--_over)}
.stats dd[data-level=warn]{color:var(--_warn)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px}
.chart svg{display:block;width:100%;height:96px;overflow:visible}
.chart rect.b{fill:var(--_accent);opacity:.85}
.chart rect.b[data-sel]{opacity:1;fill:var(--_fg)}
.chart line{stroke:var(--_border)}
.plot{position:relative}
.hits button{position:absolute;top:0;bottom:0;border-radius:3px}
.hits button:hover,.hits button[aria-pressed=true]{background:color-mix(in srgb,var(--_accent) 12%,transparent)}
.hits button:focus-visible{outline-offset:0}
.axis{display:flex;justify-content:space-between;font-size:11px;color:var(--_muted);margin-top:4px;min-height:16px}
.axis .pick{color:var(--_fg);font-weight:600}
.hint{font-size:12px;color:var(--_muted);margin:0 0 8px}
.allowance .of{margin-left:0;margin-right:6px}
.abar{position:relative;height:10px;border-radius:5px;background:var(--_border);margin:8px 0 4px}
.afill{position:absolute;inset:0 auto 0 0;border-radius:5px;background:var(--_accent);max-width:100%}
.ends{font-size:12px;color:var(--_muted);margin:8px 0 0}
.rows li+li{margin-top:2px}
.row{display:grid;grid-template-columns:1fr auto;gap:2px 8px;width:100%;padding:5px 6px;margin:0 -6px;width:calc(100% + 12px)}
button.row:hover,button.row[aria-pressed=true]{background:var(--_border)}
.row .n{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.row .a{font-weight:600}
.row .m{grid-column:1/-1;height:4px;border-radius:2px;background:var(--_border);overflow:hidden}
.row .m i{display:block;height:100%;background:var(--_accent)}
.alerts li{display:flex;gap:8px;align-items:flex-start;padding:6px 0;border-top:1px solid var(--_border)}
.alerts li:first-child{border-top:0}
.alerts .dot{flex:none;width:8px;height:8px;border-radius:50%;margin-top:5px;background:var(--_warn)}
.alerts .dot[data-level=over]{background:var(--_over)}
.alerts li[data-new]{animation:br-in 1.2s ease-out}
@keyframes br-in{from{background:color-mix(in srgb,var(--_warn) 25%,transparent)}to{background:transparent}}
.muted{color:var(--_muted)}
.explain{margin-top:12px;border:1px solid var(--_border);border-radius:calc(var(--_radius) - 2px);padding:12px}
.explain .hd{margin-bottom:8px}
.explain h3:focus{outline:none}
.explain .list{max-height:340px;overflow:auto;padding-right:4px;margin-right:-4px}
.ev+.ev{margin-top:10px;padding-top:10px;border-top:1px solid var(--_border)}
.ev-h{display:flex;justify-content:space-between;gap:8px}
.ev table{width:100%;border-collapse:collapse;margin-top:4px;font-size:12px}
.ev th{font-weight:500;color:var(--_muted);text-align:right;padding:2px 4px}
.ev td{text-align:right;padding:2px 4px;border-top:1px solid var(--_border);white-space:nowrap}
.ev td.u{white-space:normal}
.ev-h>span{min-width:0;overflow-wrap:anywhere}
.ev th:first-child,.ev td:first-child{text-align:left}
.btn{display:inline-block;padding:6px 12px;border:1px solid var(--_border)!important;background:var(--_bg)!important;font-weight:500}
.btn:hover{border-color:var(--_accent)!important}
.link{color:var(--_accent);font-weight:500;padding:2px 4px}
.more{margin-top:10px;width:100%}
.state{display:flex;flex-direction:column;align-items:center;justify-content:center;text-align:center;gap:8px;min-height:160px}
.state svg{width:28px;height:28px;color:var(--_muted)}
.state strong{font-size:14px;font-weight:600}
.sk{border-radius:6px;background:linear-gradient(90deg,var(--_surface),var(--_border),var(--_surface));background-size:200% 100%;animation:br-sk 1.4s linear infinite}
@keyframes br-sk{to{background-position:-200% 0}}
@media (prefers-reduced-motion:reduce){.sk,.alerts li[data-new]{animation:none}}
.toast{margin-bottom:12px;padding:8px 10px;border-radius:8px;background:color-mix(in srgb,var(--_warn) 14%,var(--_bg));border:1px solid var(--_warn)}
.toast:empty{display:none}
.sr{position:absolute!important;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.ft{display:flex;justify-content:space-between;gap:8px;margin-top:12px;font-size:11px;color:var(--_muted);flex-wrap:wrap}
`
