//! Browser view: the index and feeds in headless Chromium with XSLT disabled (as browsers are
//! removing it).
//!
//! Debian's `chromium` loads pages from the real daemon the way a person's browser does: its
//! navigation prefers HTML to every feed type, so every feed URL answers with the feed's HTML
//! page. `--dump-dom` prints the DOM after load; `--screenshot` renders the page; `devtools`
//! measures the layout at a phone's width. The site's `base_url` is the daemon's own address, so
//! every link on a page can be followed. Skipped with a notice when Chromium is absent, unless CI
//! requires every validator.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::Command;

use crate::devtools::Devtools;
use crate::support::*;

const HARBOUR: &str = "Harbour Robots Learn to Swim Between Piers";
const KELP: &str = "Kelp Farms Store More Carbon Than Expected";
const TRAINS: &str = "Council Debates Night Trains to the Coast";
/// Plain text with characters HTML escapes: the page must show them once, not as entities.
const HARBOUR_EXCERPT: &str =
    "The port tests eel-shaped robots that inspect pilings & moorings, even when visibility is < 1 m.";
/// The background of the "This is a feed" box of feed pages.
const ABOUT_BOX_RGB: [u8; 3] = [0xee, 0xf4, 0xfb];

/// Chromium's flags in every test: headless, no sandbox (root in a container), nothing fetched
/// but the pages asked for, and XSLT off.
pub const CHROMIUM_FLAGS: [&str; 11] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
    "--disable-features=XSLT",
];

/// A site whose `base_url` is the daemon's own address (a free port picked now; another process
/// could take it before the daemon binds it, a race accepted here), holding three clippings:
/// topics, providers, an image, a body, a clipping without a URL. The Robotics topic keeps one
/// item per feed, so its two clippings make an archive page.
fn started() -> (Site, Daemon) {
    let site = Site::new();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        listener.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}/");
    std::fs::write(
        site.config(),
        format!(
            "listen: 127.0.0.1:{port}\nbase_url: {base}\nclippings: [clippings]\nstore: data/clipfeed.db\n\
             title: Browser Clippings\ntopics:\n  - name: Robotics\n    items_per_feed: 1\n"
        ),
    )
    .unwrap();
    site.put(
        "harbour.md",
        format!(
            "---\ntitle: {HARBOUR}\nexcerpt: \"{HARBOUR_EXCERPT}\"\npublishedDateTime: 2026-03-02T14:00:00+02:00\n\
             webUrl: https://tidewater.example/robots/harbour-swimmers\nprovider:\n  name: Tidewater Gazette\n  \
             domain: tidewater.example\ntopics: [Ocean Science, Robotics]\nimages:\n  - url: {base}images/harbour-robot.png\n    \
             width: 640\n    height: 400\n---\nDivers used to do this job. Now **robots** do.\n"
        ),
    );
    site.put(
        "kelp.md",
        format!(
            "---\ntitle: {KELP}\nexcerpt: Growers want better measurements before selling blue carbon credits.\n\
             publishedDateTime: 2026-03-01T09:30:00Z\nwebUrl: https://northshore.example/science/kelp-carbon\n\
             provider:\n  name: Northshore Ledger\n  domain: northshore.example\ntopics: [Ocean Science]\n---\n"
        ),
    );
    site.put(
        "notes/trains.md",
        format!("---\ntitle: {TRAINS}\npublishedDateTime: 2026-03-03\ntopics: [Transport, Robotics]\n---\n# Minutes\n\nThe council met.\n"),
    );
    let d = Daemon::start(&site);
    assert_eq!(d.base, base, "the daemon listens where base_url points");
    assert_eq!(d.status()["clippings"], 3, "{}", d.log());
    (site, d)
}

/// Feeds the site above must have, as path stems.
const STEMS: [&str; 6] = [
    "feed",
    "topics/ocean-science",
    "topics/robotics",
    "topics/transport",
    "providers/tidewater.example",
    "providers/northshore.example",
];

/// Headless Chromium, one fresh profile per run.
pub struct Chromium;

impl Chromium {
    /// `None`, with a notice, when Chromium is not installed (a failure when CI requires it).
    pub fn find() -> Option<Chromium> {
        if have("chromium") {
            return Some(Chromium);
        }
        assert!(!validators_required(), "chromium is required (CLIPFEED_REQUIRE_VALIDATORS=1) but not installed");
        eprintln!("NOTICE: chromium is not installed; skipping this browser test");
        None
    }

    /// Runs Chromium on `url` and returns its standard output. Its standard error (D-Bus noise in
    /// containers) is shown only when it fails.
    fn run(&self, args: &[&str], url: &str) -> String {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "10", "90", "chromium"])
            .args(CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(url);
        let (status, out, err) = run(&mut cmd);
        assert!(status.success(), "chromium {args:?} {url} failed ({status}):\n{err}");
        out
    }

    /// The DOM after load, serialised as HTML.
    pub fn dom(&self, url: &str) -> String {
        let dom = self.run(&["--dump-dom"], url);
        assert!(dom.contains("<html"), "no DOM for {url}:\n{dom}");
        dom
    }

    /// A 1200×1600 rendering of `url`, as PNG bytes.
    fn screenshot(&self, url: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("temp dir");
        let png = dir.path().join("shot.png");
        self.run(&[&format!("--screenshot={}", png.display()), "--window-size=1200,1600"], url);
        std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot of {url} at {}: {e}", png.display()))
    }
}

/// Text as Chromium serialises it in a DOM dump.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\u{a0}', "&nbsp;")
}

fn unesc(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in one start tag, unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[at..].find('"')?;
    Some(unesc(&tag[at..at + len]))
}

/// Every start tag `<name ...>` in a DOM dump.
fn tags<'a>(dom: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name} ");
    dom.match_indices(&open).filter_map(|(i, _)| dom[i..].find('>').map(|end| &dom[i..i + end + 1])).collect()
}

/// The text of every `<start>...</end>` element, unescaped.
fn texts(dom: &str, start: &str, end: &str) -> Vec<String> {
    dom.match_indices(start)
        .filter_map(|(i, _)| {
            let from = i + start.len();
            dom[from..].find(end).map(|len| unesc(&dom[from..from + len]))
        })
        .collect()
}

/// Every `href` on the page, resolved against the page's URL, that points at the daemon.
fn own_hrefs(dom: &str, page: &str, d: &Daemon) -> BTreeSet<String> {
    let page = url::Url::parse(page).unwrap();
    let origin = url::Url::parse(&d.base).unwrap().origin();
    let mut out = BTreeSet::new();
    for (i, _) in dom.match_indices(" href=\"") {
        let from = i + " href=\"".len();
        let Some(len) = dom[from..].find('"') else { continue };
        let href = unesc(&dom[from..from + len]);
        if let Ok(u) = page.join(&href)
            && u.origin() == origin
        {
            out.insert(u.to_string());
        }
    }
    out
}

#[track_caller]
fn assert_all_resolve(urls: &BTreeSet<String>, page: &str) {
    for u in urls {
        let r = get(u, &[]);
        assert_eq!(r.status, 200, "{u} (linked from {page})");
        assert!(!r.body.is_empty(), "{u} (linked from {page}) is empty");
    }
}

/// Decodes a PNG as Chromium writes it (8-bit RGB or RGBA, not interlaced) into its size and
/// RGB pixels, with flate2 and the five PNG row filters.
fn png_pixels(png: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let (mut width, mut height, mut channels) = (0, 0, 0);
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                let (depth, colour, interlace) = (data[8], data[9], data[12]);
                assert!(depth == 8 && interlace == 0, "PNG depth {depth}, interlace {interlace}");
                channels = match colour {
                    2 => 3,
                    6 => 4,
                    c => panic!("PNG colour type {c}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).expect("PNG data inflates");
    let stride = width * channels;
    assert_eq!(raw.len(), height * (stride + 1), "PNG data size");
    let mut prev = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(width * height);
    for row in raw.chunks(stride + 1) {
        let (filter, line) = (row[0], &row[1..]);
        let mut cur = vec![0u8; stride];
        for i in 0..stride {
            let a = if i >= channels { cur[i - channels] } else { 0 };
            let (b, c) = (prev[i], if i >= channels { prev[i - channels] } else { 0 });
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => {
                    let p = a as i16 + b as i16 - c as i16;
                    let (pa, pb, pc) = ((p - a as i16).abs(), (p - b as i16).abs(), (p - c as i16).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("PNG filter {f}"),
            };
            cur[i] = line[i].wrapping_add(predicted);
        }
        pixels.extend(cur.chunks(channels).map(|p| [p[0], p[1], p[2]]));
        prev = cur;
    }
    (width, height, pixels)
}

/// Checks that a screenshot is a real rendering, not a blank or single-colour page, and returns
/// its pixels.
#[track_caller]
fn assert_rendered(png: &[u8], what: &str) -> Vec<[u8; 3]> {
    assert!(png.len() > 8 * 1024, "{what}: a {} byte screenshot is too small to show a page", png.len());
    let (width, height, pixels) = png_pixels(png);
    assert_eq!((width, height), (1200, 1600), "{what}: screenshot size");
    let mut counts = std::collections::HashMap::<[u8; 3], usize>::new();
    for p in &pixels {
        *counts.entry(*p).or_default() += 1;
    }
    let dominant = counts.values().max().copied().unwrap_or(0);
    let other = pixels.len() - dominant;
    // Antialiased text alone gives dozens of shades; a flat page gives one.
    assert!(counts.len() >= 32, "{what}: only {} colours", counts.len());
    assert!(other * 100 >= pixels.len(), "{what}: {other} of {} pixels differ from the background", pixels.len());
    pixels
}

#[test]
fn the_index_links_every_feed_and_every_link_resolves() {
    let Some(chromium) = Chromium::find() else { return };
    let (_site, d) = started();
    let page = d.url("/");
    let dom = chromium.dom(&page);

    // Autodiscovery: RSS, Atom and JSON of every feed, nothing else.
    let alternates: BTreeSet<(String, String)> = tags(&dom, "link")
        .into_iter()
        .filter(|t| attr(t, "rel").as_deref() == Some("alternate"))
        .map(|t| (attr(t, "type").unwrap_or_default(), attr(t, "href").unwrap_or_default()))
        .collect();
    let expected: BTreeSet<(String, String)> = STEMS
        .iter()
        .flat_map(|stem| {
            [("application/rss+xml", "rss"), ("application/atom+xml", "atom"), ("application/feed+json", "json")]
                .map(|(ty, ext)| (ty.to_string(), d.url(&format!("{stem}.{ext}"))))
        })
        .collect();
    assert_eq!(alternates, expected, "autodiscovery links");

    // Every link to this server resolves: feeds in every format, the OPML list.
    let hrefs = own_hrefs(&dom, &page, &d);
    for (_, href) in &expected {
        assert!(hrefs.contains(href), "{href} is not linked from the index");
    }
    assert!(hrefs.contains(&d.url("feeds.opml")), "the OPML list is linked: {hrefs:?}");
    assert_all_resolve(&hrefs, &page);
    // And so does every address offered for copying.
    let addresses: BTreeSet<String> = texts(&dom, "<code class=\"url\">", "</code>").into_iter().collect();
    assert!(addresses.contains(&d.url("feed.rss")) && addresses.contains(&d.url("feeds.opml")), "{addresses:?}");
    assert!(addresses.len() > STEMS.len(), "one per feed and the OPML list: {addresses:?}");
    assert_all_resolve(&addresses, &page);

    assert_rendered(&chromium.screenshot(&page), "index");
}

/// What the page of a feed must show, checked against feed-rs's reading of the feed itself at
/// the same URL: the feed's title, the address to subscribe to, every entry (its title a link to
/// its article) and nothing else; and no trace of XML.
#[track_caller]
fn assert_page(dom: &str, url: &str, subscribe: &str, want: &[&str], not_want: &[&str]) {
    for raw in ["xml-viewer-style", "This document cannot be formatted", "does not appear to have any style"] {
        assert!(!dom.contains(raw), "{url} is shown as XML ({raw}):\n{dom}");
    }
    for raw in ["<rss", "<channel", "<feed", "<entry", "<item", "<pre"] {
        assert!(!dom.contains(raw), "{url}: the feed's own {raw}> reached the page:\n{dom}");
    }
    let f = feed(url);
    let title = &f.title.as_ref().expect("feed title").content;
    assert!(dom.contains(&format!("<h1>{}</h1>", esc(title))), "{url}: heading {title:?}:\n{dom}");
    assert!(dom.contains(&format!("<code class=\"url\">{}</code>", esc(subscribe))), "{url}: {subscribe}:\n{dom}");
    assert!(dom.contains("<strong>This is a feed.</strong>"), "{url}:\n{dom}");
    let titles = titles(&f);
    for t in want {
        assert!(titles.iter().any(|x| x == t), "{url}: feed-rs finds no {t:?} in {titles:?}");
    }
    assert_eq!(titles.len(), want.len(), "{url}: {titles:?}");
    assert_eq!(dom.matches("<article>").count(), want.len(), "{url}: one article per entry:\n{dom}");
    for e in &f.entries {
        let t = &e.title.as_ref().unwrap().content;
        let link = format!("<h2><a href=\"{}\">{}</a></h2>", esc(&e.links[0].href).replace('"', "&quot;"), esc(t));
        assert_eq!(dom.matches(&link).count(), 1, "{url}: {link}:\n{dom}");
    }
    for t in not_want {
        assert!(!dom.contains(t), "{url} shows {t:?}, which is not in this feed:\n{dom}");
    }
}

/// The links to the document in each format, the current one marked.
#[track_caller]
fn assert_formats(dom: &str, urls: [&str; 3], current: usize) {
    for (i, (url, ty)) in
        urls.iter().zip(["application/rss+xml", "application/atom+xml", "application/feed+json"]).enumerate()
    {
        let mark = if i == current { " aria-current=\"page\"" } else { "" };
        let tag = format!("<a href=\"{}\" type=\"{ty}\"{mark}>", esc(url));
        assert_eq!(dom.matches(&tag).count(), 1, "{tag}:\n{dom}");
    }
}

#[test]
fn feeds_are_pages_in_a_browser_without_xslt() {
    let Some(chromium) = Chromium::find() else { return };
    let (_site, d) = started();
    let image = d.url("images/harbour-robot.png");
    // Known size: the space is kept whether the picture loads or not (it does not: 404).
    let picture = format!(
        "<img src=\"{}\" alt=\"Picture: {HARBOUR}\" class=\"pic\" width=\"640\" height=\"400\" loading=\"lazy\" decoding=\"async\">",
        esc(&image)
    );
    let rss = d.url("feed.rss");
    let dom = chromium.dom(&rss);
    assert_page(&dom, &rss, &rss, &[HARBOUR, KELP, TRAINS], &[]);
    assert_formats(&dom, [&rss, &d.url("feed.atom"), &d.url("feed.json")], 0);
    assert_eq!(dom.matches(&picture).count(), 1, "one picture, HARBOUR's:\n{dom}");
    // The excerpt reads as written: escaped once for the page, not twice.
    assert!(dom.contains(&format!("<p class=\"summary\">{}</p>", esc(HARBOUR_EXCERPT))), "{dom}");
    assert!(!dom.contains("&amp;amp;") && !dom.contains("&amp;lt;"), "double escaping:\n{dom}");
    // Every date in one format, in UTC (14:00 at +02:00).
    assert!(dom.contains("<time datetime=\"2026-03-02T12:00:00+00:00\">2 March 2026, 12:00 UTC</time>"), "{dom}");
    assert!(dom.contains("<time datetime=\"2026-03-03T00:00:00+00:00\">3 March 2026, 00:00 UTC</time>"), "{dom}");
    assert!(dom.contains("<span class=\"provider\">Tidewater Gazette</span>"), "{dom}");
    assert!(dom.contains("<span class=\"provider\">Northshore Ledger</span>"), "{dom}");
    for (topic, slug) in [("Ocean Science", "ocean-science"), ("Robotics", "robotics"), ("Transport", "transport")] {
        let link = format!("<li><a href=\"{}\">{topic}</a></li>", esc(&d.url(&format!("topics/{slug}.rss"))));
        assert!(dom.contains(&link), "topic {topic}:\n{dom}");
    }
    // The body is there, folded.
    assert!(dom.contains("<details><summary>Full text</summary>"), "{dom}");
    assert!(dom.contains("Now <strong>robots</strong> do."), "{dom}");
    // The clipping without a URL links to its page here; that and the link home resolve.
    let hrefs = own_hrefs(&dom, &rss, &d);
    let trains = hrefs.iter().find(|h| h.starts_with(&d.url("clippings/"))).expect("a clipping page link");
    assert!(get(trains, &[]).text().contains(TRAINS), "{trains}");
    assert!(hrefs.contains(&d.base), "the page links home: {hrefs:?}");
    assert!(!hrefs.contains(&image), "the image is shown, not linked");
    assert_all_resolve(&hrefs, &rss);

    // A topic's Atom feed, and the JSON Feed: the same page from the other formats.
    let atom = d.url("topics/ocean-science.atom");
    let dom = chromium.dom(&atom);
    assert_page(&dom, &atom, &atom, &[HARBOUR, KELP], &[TRAINS]);
    assert_eq!(dom.matches(&picture).count(), 1, "{dom}");
    let json = d.url("feed.json");
    let dom = chromium.dom(&json);
    assert!(dom.contains(&format!("<code class=\"url\">{}</code>", esc(&json))), "{dom}");
    assert_formats(&dom, [&rss, &d.url("feed.atom"), &json], 2);
    assert_eq!(dom.matches("<article>").count(), 3, "{dom}");

    // A filtered view: its own address is the one to subscribe to.
    let filtered = d.url("topics/ocean-science.rss?q=kelp");
    let dom = chromium.dom(&filtered);
    assert_page(&dom, &filtered, &filtered, &[KELP], &[HARBOUR]);

    // A rendering, with the page's own CSS applied under its Content-Security-Policy: its
    // subscribe box is on screen.
    let pixels = assert_rendered(&chromium.screenshot(&rss), "RSS feed page");
    let boxed = pixels.iter().filter(|p| **p == ABOUT_BOX_RGB).count();
    assert!(boxed > 20_000, "only {boxed} pixels of the subscribe box's colour {ABOUT_BOX_RGB:02x?}");
}

#[test]
fn archive_pages_are_pages_linked_both_ways() {
    let Some(chromium) = Chromium::find() else { return };
    let (_site, d) = started();
    for ext in ["rss", "atom"] {
        let current = d.url(&format!("topics/robotics.{ext}"));
        // One item per feed: archive pages of one clipping, named {size}-{index}.
        let archive = d.url(&format!("topics/robotics/archive/1-0.{ext}"));
        let dom = chromium.dom(&current);
        let older: Vec<_> = tags(&dom, "a").into_iter().filter(|t| attr(t, "rel").as_deref() == Some("prev")).collect();
        assert_eq!(older.len(), 1, "{current}: one link to older clippings:\n{dom}");
        assert_eq!(attr(older[0], "href").as_deref(), Some(archive.as_str()), "{older:?}");
        let now = titles(&feed(&current));
        assert_eq!(now.len(), 1, "{current}: one item per feed: {now:?}");
        assert_page(&dom, &current, &current, &[now[0].as_str()], &[]);

        // The archive page offers the current feed, not itself, for subscribing, and links to it.
        let dom = chromium.dom(&archive);
        let then = titles(&feed(&archive));
        assert_eq!(then.len(), 1, "{archive}: {then:?}");
        assert_page(&dom, &archive, &current, &[then[0].as_str()], &[now[0].as_str()]);
        assert!(dom.contains("This is archive page 0 of the feed"), "{archive}:\n{dom}");
        let back = tags(&dom, "a").into_iter().filter_map(|t| attr(t, "href")).filter(|h| *h == current).count();
        assert!(back >= 1, "{archive}: no link back to {current}:\n{dom}");
        let newer: Vec<_> = tags(&dom, "a").into_iter().filter(|t| attr(t, "rel").as_deref() == Some("next")).collect();
        assert_eq!(newer.len(), 1, "{archive}: a link to newer clippings:\n{dom}");
        let mut both = [now[0].as_str(), then[0].as_str()];
        both.sort();
        assert_eq!(both, [TRAINS, HARBOUR], "between them, the two pages hold both Robotics clippings");
        assert_all_resolve(&own_hrefs(&dom, &archive, &d), &archive);
    }
}

/// The layout of the page at `url` at a phone's width: (viewport width, document width, body's
/// max-width as computed, elements reaching past the viewport).
fn layout(tools: &mut Devtools, url: &str) -> (u64, u64, String, Vec<String>) {
    let session = tools.open(url, PHONE_WIDTH, 800);
    let v = tools.eval(
        &session,
        "(() => { const root = document.documentElement, width = root.clientWidth; \
         const wide = [...document.body.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > width + 0.5) \
           .map(e => e.tagName.toLowerCase() + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)); \
         return {width, scroll: root.scrollWidth, style: getComputedStyle(document.body).maxWidth, wide}; })()",
    );
    let wide = v["wide"].as_array().map(|a| a.iter().map(|w| w.to_string()).collect()).unwrap_or_default();
    (v["width"].as_u64().unwrap(), v["scroll"].as_u64().unwrap(), v["style"].as_str().unwrap_or("").to_string(), wide)
}

/// A phone's width in CSS pixels.
const PHONE_WIDTH: u32 = 360;

#[test]
fn pages_fit_a_phone_without_sideways_scrolling() {
    let Some(_) = Chromium::find() else { return };
    let (site, d) = started();
    // Long words and a long news site name: what breaks narrow layouts.
    site.put(
        "long.md",
        "---\ntitle: Supercalifragilisticexpialidocious-Pneumonoultramicroscopicsilicovolcanoconiosis Report\n\
         excerpt: https://very-long-subdomain.of-a-news-site-with-a-long-name.example/articles/2026/03/04/the-slug-goes-on-and-on\n\
         publishedDateTime: 2026-03-04T08:00:00Z\nwebUrl: https://very-long-subdomain.of-a-news-site-with-a-long-name.example/a\n\
         provider:\n  name: The Very Long Name of a News Site With Many Words In It\n  \
         domain: very-long-subdomain.of-a-news-site-with-a-long-name.example\ntopics: [Ocean Science]\n\
         images:\n  - url: https://images.invalid/no-such-picture\n---\n\
         A body with a long line: `https://very-long-subdomain.of-a-news-site-with-a-long-name.example/x/y/z/w`\n",
    );
    poll("the fourth clipping", || (d.status()["clippings"] == 4).then_some(()));
    let trains = {
        let f = feed(&d.url("topics/transport.atom"));
        f.entries[0].links[0].href.clone()
    };
    let mut tools = Devtools::start();

    // The probe sees an overflow when there is one.
    let (width, scroll, _, _) = layout(
        &mut tools,
        "data:text/html,<meta%20name=viewport%20content=width=device-width><p%20style=width:600px>wide</p>",
    );
    assert_eq!(width, u64::from(PHONE_WIDTH));
    assert!(scroll >= 600, "the probe misses a 600 px paragraph: {scroll}");

    for path in [
        "/",
        "/feed.rss",
        "/topics/ocean-science.atom",
        "/providers/very-long-subdomain.of-a-news-site-with-a-long-name.example.json",
        "/topics/robotics/archive/1-0.rss",
        "/feed.rss?q=report",
    ] {
        let url = d.url(path);
        let (width, scroll, style, wide) = layout(&mut tools, &url);
        eprintln!("{path} at {PHONE_WIDTH} px: {scroll} px wide");
        assert_eq!(width, u64::from(PHONE_WIDTH), "{path}: the page is laid out for the phone's width");
        assert_eq!(style, "832px", "{path}: the page's stylesheet applies (52rem)");
        assert!(scroll <= width, "{path} scrolls sideways at {width} px: {scroll} px wide; too wide: {wide:?}");
    }
    let (width, scroll, _, wide) = layout(&mut tools, &trains);
    assert!(scroll <= width, "the clipping page scrolls sideways: {scroll} px; too wide: {wide:?}");

    // A picture that does not load keeps its space: the text around it does not move.
    let session = tools.open(&d.url("/feed.rss"), PHONE_WIDTH, 800);
    let pictures = tools.eval(
        &session,
        "[...document.querySelectorAll('img.pic')].map(i => { i.loading = 'eager'; const r = i.getBoundingClientRect(); \
         return [i.alt, Math.round(r.width), Math.round(r.height)]; })",
    );
    let pictures = pictures.as_array().expect("pictures").clone();
    assert_eq!(pictures.len(), 2, "{pictures:?}");
    for p in &pictures {
        let (w, h) = (p[1].as_u64().unwrap(), p[2].as_u64().unwrap());
        assert!(w > 200 && h > 100, "a missing picture collapsed: {p}");
        assert!(p[0].as_str().unwrap().starts_with("Picture: "), "{p}");
    }
}
