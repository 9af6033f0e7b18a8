//! `cargo memassert html DIR -o FILE`: one self-contained page (inline CSS,
//! JS and SVG; nothing fetched): a sortable table of every test and, per
//! test, an icicle chart of its live memory at the peak by stack, its
//! allocation-size histogram and its top sites with their source lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::records::{Frame, Record};
use crate::text::{self, html};

/// Chart width in SVG units (the page scales it to the column).
const WIDTH: f64 = 1200.0;
/// One frame's row.
const ROW: f64 = 18.0;

/// A node of the icicle: one frame on one path from the root.
#[derive(Default)]
struct Node {
    bytes: u64,
    blocks: u64,
    children: BTreeMap<Frame, Node>,
}

impl Node {
    fn depth(&self) -> usize {
        1 + self.children.values().map(Node::depth).max().unwrap_or(0)
    }
}

fn tree(record: &Record) -> Node {
    let mut root = Node::default();
    for stack in &record.stacks {
        root.bytes += stack.bytes;
        root.blocks += stack.blocks;
        let mut node = &mut root;
        // Outermost frame first: the icicle grows down from the root.
        for frame in stack.frames.iter().rev() {
            node = node.children.entry(frame.clone()).or_default();
            node.bytes += stack.bytes;
            node.blocks += stack.blocks;
        }
    }
    if record.other.0 > 0 {
        let other = Frame {
            file: String::new(),
            line: 0,
            function: "(other stacks)".into(),
        };
        let node = root.children.entry(other).or_default();
        node.bytes += record.other.0;
        node.blocks += record.other.1;
        root.bytes += record.other.0;
        root.blocks += record.other.1;
    }
    root
}

/// `a::b::C::f` → `C::f`, `a::f::{{closure}}::{{closure}}` → `a::f::{{closure}}`
/// (generic arguments kept whole).
fn short_name(function: &str) -> String {
    let mut depth = 0i32;
    let mut segments = Vec::new();
    let mut start = 0;
    let bytes = function.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' => depth -= 1,
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                segments.push(&function[start..i]);
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    segments.push(&function[start..]);
    let closures = segments
        .iter()
        .rev()
        .take_while(|s| **s == "{{closure}}")
        .count();
    let named = &segments[..segments.len() - closures];
    let mut out = named[named.len().saturating_sub(2)..].join("::");
    if closures > 0 {
        out.push_str("::{{closure}}");
    }
    out
}

fn label_of(frame: &Frame) -> String {
    if frame.function.is_empty() {
        frame.location()
    } else {
        short_name(&frame.function)
    }
}

/// A stable colour per function: blues and greens, as memory flame graphs use.
fn colour(frame: &Frame) -> String {
    let mut hash: u32 = 2166136261;
    for b in frame.function.bytes().chain(frame.file.bytes()) {
        hash = (hash ^ b as u32).wrapping_mul(16777619);
    }
    let hue = 160 + hash % 70;
    let light = 62 + (hash >> 8) % 16;
    format!("hsl({hue},55%,{light}%)")
}

fn flame(out: &mut String, record: &Record) {
    let root = tree(record);
    if root.bytes == 0 {
        let why = if record.figures.is_none() {
            "no figures: the test body did not finish"
        } else {
            "nothing was live at the peak"
        };
        let _ = write!(
            out,
            "<svg class=\"flame\" data-test=\"{}\" viewBox=\"0 0 {WIDTH} {ROW}\" width=\"100%\">\
             <text x=\"4\" y=\"13\" class=\"empty\">{why}</text></svg>",
            html(&record.id())
        );
        return;
    }
    let height = root.depth() as f64 * ROW;
    let _ = write!(
        out,
        "<svg class=\"flame\" data-test=\"{}\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" \
         role=\"img\" aria-label=\"live memory at the peak by stack\">",
        html(&record.id())
    );
    let all = Frame {
        file: String::new(),
        line: 0,
        function: format!("all live at the peak: {}", text::size(root.bytes)),
    };
    node_svg(out, &all, &root, root.bytes, 0.0, WIDTH, 0, record);
    out.push_str("</svg>");
}

#[allow(clippy::too_many_arguments)]
fn node_svg(
    out: &mut String,
    frame: &Frame,
    node: &Node,
    total: u64,
    x: f64,
    width: f64,
    depth: usize,
    record: &Record,
) {
    if width < 0.3 {
        return;
    }
    let y = depth as f64 * ROW;
    let share = node.bytes as f64 * 100.0 / total as f64;
    let mut title = frame.function.clone();
    if !frame.file.is_empty() {
        let _ = write!(title, "\n{}", frame.location());
        if let Some(source) = record.source(frame) {
            let _ = write!(title, "\n    {source}");
        }
    }
    let _ = write!(
        title,
        "\n{} in {} block{} ({share:.1}%)",
        text::size(node.bytes),
        node.blocks,
        if node.blocks == 1 { "" } else { "s" }
    );
    let fill = if depth == 0 {
        "hsl(210,20%,80%)".to_string()
    } else {
        colour(frame)
    };
    let _ = write!(
        out,
        "<g class=\"frame\" data-function=\"{}\"><title>{}</title>\
         <rect x=\"{x:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{fill}\" rx=\"2\"/>",
        html(&frame.function),
        html(&title),
        (width - 0.5).max(0.1),
        ROW - 1.0
    );
    let label = if depth == 0 {
        frame.function.clone()
    } else {
        label_of(frame)
    };
    let fits = ((width - 6.0) / 7.0).floor() as usize;
    if fits >= 3 {
        let shown: String = if label.chars().count() > fits {
            let mut s: String = label.chars().take(fits - 1).collect();
            s.push('…');
            s
        } else {
            label
        };
        let _ = write!(
            out,
            "<text x=\"{:.2}\" y=\"{:.1}\">{}</text>",
            x + 3.0,
            y + 13.0,
            html(&shown)
        );
    }
    out.push_str("</g>");
    let mut children: Vec<(&Frame, &Node)> = node.children.iter().collect();
    children.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then_with(|| a.0.cmp(b.0)));
    let mut cx = x;
    for (child_frame, child) in children {
        let w = width * child.bytes as f64 / node.bytes as f64;
        node_svg(out, child_frame, child, total, cx, w, depth + 1, record);
        cx += w;
    }
}

fn histogram(out: &mut String, record: &Record) {
    let Some((lo, hi)) = text::used_range(&record.sizes) else {
        out.push_str("<p class=\"empty\">No allocations.</p>");
        return;
    };
    let n = hi - lo + 1;
    let bar = 36.0;
    let (w, h) = (n as f64 * bar + 10.0, 120.0);
    let max = record.sizes[lo..=hi]
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let _ = write!(
        out,
        "<svg class=\"hist\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" \
         role=\"img\" aria-label=\"allocation sizes\">"
    );
    for (i, k) in (lo..=hi).enumerate() {
        let count = record.sizes[k];
        let bh = if count == 0 {
            0.0
        } else {
            (count as f64 / max * 80.0).max(2.0)
        };
        let x = 5.0 + i as f64 * bar;
        let upper = if k + 1 < 64 {
            text::bucket(k + 1)
        } else {
            "more".into()
        };
        let _ = write!(
            out,
            "<g><title>{} to under {}: {count} allocation{}</title>\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"hsl(200,55%,55%)\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"count\">{}</text>\
             <text x=\"{:.1}\" y=\"{h:.1}\" class=\"axis\">{}</text></g>",
            text::bucket(k),
            upper,
            if count == 1 { "" } else { "s" },
            x + 2.0,
            95.0 - bh,
            bar - 4.0,
            x + bar / 2.0,
            93.0 - bh,
            if count == 0 { String::new() } else { count.to_string() },
            x + bar / 2.0,
            text::bucket(k).replace(' ', "")
        );
    }
    out.push_str("</svg>");
}

fn sites(out: &mut String, record: &Record) {
    if record.sites.is_empty() {
        out.push_str("<p class=\"empty\">No sites live at the peak.</p>");
        return;
    }
    out.push_str("<ol class=\"sites\">");
    for site in &record.sites {
        let Some(first) = site.frames.first() else {
            continue;
        };
        let _ = write!(
            out,
            "<li><b>{}</b> in {} block{} at <code>{}</code><ul class=\"frames\">",
            text::size(site.bytes),
            site.blocks,
            if site.blocks == 1 { "" } else { "s" },
            html(&first.location())
        );
        for frame in &site.frames {
            let _ = write!(
                out,
                "<li><code>{}</code> in <span class=\"fn\">{}</span>",
                html(&frame.location()),
                html(&frame.function)
            );
            if let Some(source) = record.source(frame) {
                let _ = write!(out, "<pre>{}</pre>", html(source));
            }
            out.push_str("</li>");
        }
        out.push_str("</ul></li>");
    }
    out.push_str("</ol>");
}

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{padding:12px 20px;background:#243447;color:#fff}
header h1{font-size:18px;margin:0}
header p{margin:2px 0 0;color:#c8d3df;font-size:12px}
.tablewrap{max-height:330px;overflow:auto;margin:12px 20px;background:#fff;border:1px solid #d7dce2}
table{border-collapse:collapse;width:100%}
th,td{padding:3px 10px;text-align:right;white-space:nowrap;border-bottom:1px solid #eceff2}
td.name{max-width:420px;overflow:hidden;text-overflow:ellipsis}
td:last-child,th:last-child{text-align:left}td:last-child code{font-size:11px}
th{position:sticky;top:0;background:#e9edf1;cursor:pointer;user-select:none}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2),th:nth-child(3),td:nth-child(3){text-align:left}
th.asc::after{content:" ▲"}th.desc::after{content:" ▼"}
tbody tr{cursor:pointer}tbody tr:hover{background:#f1f6fb}
tr.selected{background:#dcecfb!important}
tr.bad td:nth-child(3){color:#b3261e;font-weight:600}
main{margin:0 20px 20px}
section.test{background:#fff;border:1px solid #d7dce2;padding:10px 16px;margin-bottom:14px}
section.test h2{font-size:16px;margin:4px 0}
section.test h3{font-size:13px;margin:12px 0 4px;color:#4a5763}
.figures span{margin-right:18px}
.failure{color:#b3261e;font-family:ui-monospace,monospace}
svg.flame text{font:11px ui-monospace,monospace;fill:#1d232a;pointer-events:none}
svg.flame g.frame:hover rect{stroke:#243447;stroke-width:1}
svg.hist text{font:10px ui-monospace,monospace;text-anchor:middle;fill:#4a5763}
.empty{color:#6b7680;font-style:italic}
ol.sites{padding-left:22px;margin:0}ol.sites>li{margin-bottom:6px}
ul.frames{list-style:none;padding-left:10px;margin:2px 0}
ul.frames pre{margin:0 0 0 18px;color:#365f2e}
code,pre{font:12px ui-monospace,monospace}
.fn{color:#4a5763}
"#;

const SCRIPT: &str = r#"
(function(){
  var table=document.getElementById('tests');
  var body=table.tBodies[0];
  var heads=table.tHead.rows[0].cells;
  function select(row){
    Array.prototype.forEach.call(body.rows,function(r){r.classList.toggle('selected',r===row);});
    document.querySelectorAll('section.test').forEach(function(s){
      s.style.display=(s.id===row.dataset.section)?'':'none';
    });
  }
  Array.prototype.forEach.call(heads,function(th,i){
    th.addEventListener('click',function(){
      var asc=!th.classList.contains('asc');
      Array.prototype.forEach.call(heads,function(h){h.classList.remove('asc','desc');});
      th.classList.add(asc?'asc':'desc');
      var numeric=th.dataset.type==='num';
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[i].dataset.value||a.cells[i].textContent;
        var y=b.cells[i].dataset.value||b.cells[i].textContent;
        var c=numeric?(Number(x)-Number(y)):x.localeCompare(y);
        return asc?c:-c;
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  Array.prototype.forEach.call(body.rows,function(r){
    r.addEventListener('click',function(){
      select(r);
      history.replaceState(null,'','#'+encodeURIComponent(r.dataset.test));
    });
  });
  // `page.html#<test>` opens that test; else the heaviest.
  var wanted=decodeURIComponent(location.hash.slice(1));
  var first=Array.prototype.find.call(body.rows,function(r){return r.dataset.test===wanted;})||body.rows[0];
  if(first){select(first);}
  document.body.dataset.ready='1';
})();
"#;

/// The page.
pub fn render(dir: &str, records: &BTreeMap<String, Record>) -> String {
    let mut ordered: Vec<&Record> = records.values().collect();
    ordered.sort_by(|a, b| {
        let (pa, pb) = (a.figures.map(|f| f.peak), b.figures.map(|f| f.peak));
        pb.cmp(&pa).then_with(|| a.id().cmp(&b.id()))
    });
    let failed = ordered.iter().filter(|r| r.failed()).count();
    let failed = if failed > 0 {
        format!(", {failed} failed a limit or returned Err")
    } else {
        String::new()
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>memassert: {} tests</title><style>{STYLE}</style></head><body>\
         <header><h1>memassert: {} tests{}</h1><p>records from {} · click a column to sort, \
         a row to see its test · written by cargo memassert html</p></header>",
        ordered.len(),
        ordered.len(),
        failed,
        html(dir)
    );
    out.push_str(
        "<div class=\"tablewrap\"><table id=\"tests\"><thead><tr>\
         <th data-type=\"text\">Test</th><th data-type=\"text\">Binary</th>\
         <th data-type=\"text\">Outcome</th><th data-type=\"num\" class=\"desc\">Peak</th>\
         <th data-type=\"num\">Total</th><th data-type=\"num\">Allocations</th>\
         <th data-type=\"num\">Leaked</th><th data-type=\"text\">Sizes</th></tr></thead><tbody>",
    );
    for (i, record) in ordered.iter().enumerate() {
        let number = |v: Option<u64>, bytes: bool| match v {
            Some(v) => format!(
                "<td data-value=\"{v}\">{}</td>",
                if bytes { text::size(v) } else { v.to_string() }
            ),
            None => "<td data-value=\"-1\">–</td>".to_string(),
        };
        let f = record.figures;
        // The bars in the cell, the range in its tooltip.
        let spark = if f.is_some() {
            text::sparkline(&record.sizes)
        } else {
            String::new()
        };
        let (bars, range) = spark.split_once("| ").unwrap_or((&spark, ""));
        let _ = write!(
            out,
            "<tr data-test=\"{}\" data-section=\"t{i}\"{}><td class=\"name\">{}</td><td>{}</td><td title=\"{}\">{}</td>{}{}{}{}<td title=\"{}\"><code>{}</code></td></tr>",
            html(&record.id()),
            if record.failed() { " class=\"bad\"" } else { "" },
            html(&record.test),
            html(&record.binary),
            html(&record.message),
            record.outcome.as_str(),
            number(f.map(|f| f.peak), true),
            number(f.map(|f| f.total), true),
            number(f.map(|f| f.allocs), false),
            number(f.map(|f| f.leaked), true),
            html(range),
            html(&if bars.is_empty() {
                String::new()
            } else {
                format!("{bars}|")
            })
        );
    }
    out.push_str("</tbody></table></div><main>");
    for (i, record) in ordered.iter().enumerate() {
        let _ = write!(
            out,
            "<section class=\"test\" id=\"t{i}\" data-test=\"{}\"><h2>{} <small>({})</small></h2>",
            html(&record.id()),
            html(&record.test),
            html(&record.binary)
        );
        if !record.message.is_empty() {
            let _ = write!(
                out,
                "<p class=\"failure\">{}: {}</p>",
                record.outcome.as_str(),
                html(&record.message)
            );
        }
        if let Some(f) = record.figures {
            let _ = write!(
                out,
                "<p class=\"figures\"><span>Peak <b>{}</b></span><span>Total <b>{}</b></span>\
                 <span>Allocations <b>{}</b></span><span>Leaked <b>{}</b> in {} blocks</span></p>",
                text::size(f.peak),
                text::size(f.total),
                f.allocs,
                text::size(f.leaked),
                f.leaked_blocks
            );
        }
        out.push_str("<h3>Live memory at the peak, by stack (hover for details)</h3>");
        flame(&mut out, record);
        out.push_str("<h3>Allocation sizes (power-of-two buckets)</h3>");
        histogram(&mut out, record);
        out.push_str("<h3>Top sites at the peak</h3>");
        sites(&mut out, record);
        out.push_str("</section>");
    }
    let _ = writeln!(out, "</main><script>{SCRIPT}</script></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::short_name;

    #[test]
    fn short_names() {
        assert_eq!(short_name("demo::cache::Cache::insert"), "Cache::insert");
        assert_eq!(short_name("main"), "main");
        assert_eq!(short_name("a::b<c::d>::f"), "b<c::d>::f");
        assert_eq!(
            short_name("suite::in_a_thread::{{closure}}::{{closure}}"),
            "suite::in_a_thread::{{closure}}"
        );
    }
}
