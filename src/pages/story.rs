//! A story as readers see it: its lead clipping, the item that stands for the whole story in a
//! story-grouped feed (`?group=story`), and the HTML page of its coverage (`/stories/{id}`).
//! Pure string building from member items the caller has already narrowed to what the reader
//! may see.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{esc, head, time};
use crate::feed::{Format, Links};
use crate::item::{Item, ItemData, TopicRef};

/// The lead of a story: the member of highest quality (none counts lowest), then the earliest,
/// then by id. `None` for no members.
pub(crate) fn lead(members: &[Item]) -> Option<&Item> {
    members.iter().min_by(|a, b| {
        let qa = a.data.clip.quality.unwrap_or(i64::MIN);
        let qb = b.data.clip.quality.unwrap_or(i64::MIN);
        qb.cmp(&qa).then(a.data.published.cmp(&b.data.published)).then_with(|| a.id.cmp(&b.id))
    })
}

/// The news site of a member, by name.
fn site_name(item: &Item) -> &str {
    item.data.clip.provider.as_ref().map_or("", |p| p.name.as_str())
}

/// How large a story is as one audience sees it, counted over every member that audience may
/// see (`store`'s counts), not only those a view lists (the newest few hundred). A news site is
/// a provider's domain, as the provider feeds are; a member with no domain counts as a site of
/// its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StorySize {
    pub(crate) clippings: u64,
    pub(crate) sites: u64,
}

impl StorySize {
    /// "N clippings from M news sites".
    fn phrase(&self) -> String {
        let s = |n: u64| if n == 1 { "" } else { "s" };
        format!("{} clipping{} from {} news site{}", self.clippings, s(self.clippings), self.sites, s(self.sites))
    }
}

/// The members, newest first, as an HTML list (site, headline linked, date), saying so when
/// they are fewer than the story's clippings, then the related coverage they name that is not
/// itself a member.
fn coverage_html(members: &[Item], size: StorySize, links: &Links) -> String {
    let mut out = String::new();
    if size.clippings > members.len() as u64 {
        out.push_str(&format!("<p>The newest {} listed.</p>\n", members.len()));
    }
    out.push_str("<ul>\n");
    for m in newest_first(members) {
        let site = site_name(m);
        let site = if site.is_empty() { String::new() } else { format!("{}: ", esc(site)) };
        let (title, date) = (esc(&m.data.clip.title), m.data.published.format("%Y-%m-%d"));
        match links.item_link(m) {
            Some(href) => out.push_str(&format!("<li>{site}<a href=\"{}\">{title}</a> ({date})</li>\n", esc(&href))),
            None => out.push_str(&format!("<li>{site}{title} ({date})</li>\n")),
        }
    }
    out.push_str("</ul>\n");
    let own: BTreeSet<&str> = members.iter().filter_map(|m| m.data.clip.url.as_deref()).collect();
    let mut seen = BTreeSet::new();
    let related: Vec<_> = members
        .iter()
        .flat_map(|m| &m.data.clip.related)
        .filter(|r| !own.contains(r.url.as_str()) && seen.insert(r.url.as_str()))
        .collect();
    if !related.is_empty() {
        out.push_str("<p>Related coverage named:</p>\n<ul>\n");
        for r in related {
            let by = r.provider.as_deref().map(|p| format!(" ({})", esc(p))).unwrap_or_default();
            out.push_str(&format!("<li><a href=\"{}\">{}</a>{by}</li>\n", esc(&r.url), esc(&r.title)));
        }
        out.push_str("</ul>\n");
    }
    out
}

fn newest_first(members: &[Item]) -> Vec<&Item> {
    let mut v: Vec<&Item> = members.iter().collect();
    v.sort_by(|a, b| b.data.published.cmp(&a.data.published).then_with(|| a.id.cmp(&b.id)));
    v
}

/// The item standing for story `id` in a story-grouped feed: the lead's title, link, summary,
/// news site and picture; content giving its `size` and listing `members` (every visible one
/// up to the store's cap), the related coverage they name and a
/// link to the story's page; dated by its newest member; updated when any member last was, or
/// when coverage last `joined` it if later. `None` for no members.
pub(crate) fn story_item(
    id: &str,
    members: &[Item],
    size: StorySize,
    joined: Option<DateTime<Utc>>,
    links: &Links,
) -> Option<Item> {
    let lead = lead(members)?;
    let mut html = format!("<p>{}:</p>\n", size.phrase());
    html.push_str(&coverage_html(members, size, links));
    // A story's page shows its public coverage only: a private feed's story links to none.
    if links.has_pages() {
        html.push_str(&format!("<p><a href=\"{}\">The whole story</a></p>", esc(&links.story_page(id))));
    }
    let mut topics: Vec<TopicRef> = Vec::new();
    for t in members.iter().flat_map(|m| &m.data.topics) {
        if !topics.iter().any(|x| x.slug == t.slug) {
            topics.push(t.clone());
        }
    }
    let mut clip = lead.data.clip.clone();
    clip.url = links.item_link(lead);
    clip.related = Vec::new();
    clip.content_html = Some(html);
    let published = members.iter().map(|m| m.data.published).max().unwrap_or(lead.data.published);
    let updated: DateTime<Utc> =
        members.iter().map(|m| m.updated).max().unwrap_or(lead.updated).max(joined.unwrap_or_default());
    Some(Item {
        id: id.to_string(),
        updated,
        data: ItemData { clip, topics, published, dated: true, also: Vec::new() },
    })
}

/// A story as the index lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryListing {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) size: StorySize,
    pub(crate) newest: DateTime<Utc>,
}

/// The listing of story `id` from its (visible) members and its size; `None` for none.
pub(crate) fn story_listing(id: &str, members: &[Item], size: StorySize) -> Option<StoryListing> {
    let lead = lead(members)?;
    Some(StoryListing {
        id: id.to_string(),
        title: lead.data.clip.title.clone(),
        size,
        newest: members.iter().map(|m| m.data.published).max().unwrap_or(lead.data.published),
    })
}

/// The index's section of the latest stories.
pub(crate) fn latest_section(out: &mut String, links: &Links, stories: &[StoryListing]) {
    out.push_str("<h2>Latest stories</h2>\n");
    if stories.is_empty() {
        out.push_str("<p class=\"meta\">None yet.</p>\n");
        return;
    }
    out.push_str("<ol class=\"items\">\n");
    for s in stories {
        out.push_str(&format!(
            "<li><h2><a href=\"{}\">{}</a></h2><p class=\"meta\">{} · {}</p></li>\n",
            esc(&links.story_page(&s.id)),
            esc(&s.title),
            s.size.phrase(),
            time(s.newest)
        ));
    }
    out.push_str("</ol>\n");
    out.push_str(&format!(
        "<p>Every feed also groups by story: <a href=\"{0}\">{0}</a></p>\n",
        esc(&format!("{}?group=story", links.feed(&crate::feed::FeedKey::All, Format::Rss)))
    ));
}

/// The HTML page of story `id`: its lead's headline, its size, the coverage, and the story's feeds.
pub(crate) fn story_page(site_title: &str, links: &Links, id: &str, members: &[Item], size: StorySize) -> String {
    let Some(lead) = lead(members) else { return String::new() };
    let mut out = String::with_capacity(2048 + members.len() * 300);
    head(&mut out, &format!("{} · {site_title}", lead.data.clip.title));
    for f in Format::ALL {
        out.push_str(&format!(
            "<link rel=\"alternate\" type=\"{}\" title=\"{}\" href=\"{}\">\n",
            f.media_type(),
            esc(&format!("Story: {}", lead.data.clip.title)),
            esc(&links.story_feed(id, f))
        ));
    }
    out.push_str("</head>\n<body>\n");
    out.push_str(&format!("<p class=\"meta\"><a href=\"{}\">{}</a></p>\n", esc(links.base()), esc(site_title)));
    out.push_str(&format!("<h1>{}</h1>\n", esc(&lead.data.clip.title)));
    out.push_str(&format!(
        "<p class=\"meta\">A story: {}, the latest {}.</p>\n",
        size.phrase(),
        time(members.iter().map(|m| m.data.published).max().unwrap_or(lead.data.published))
    ));
    out.push_str(&coverage_html(members, size, links));
    let feeds: Vec<String> = Format::ALL
        .iter()
        .map(|&f| format!("<a href=\"{}\">{}</a>", esc(&links.story_feed(id, f)), f.extension().to_uppercase()))
        .collect();
    out.push_str(&format!(
        "<p>Follow this story (new coverage as it arrives): {} <code class=\"url\">{}</code></p>\n",
        feeds.join(" · "),
        esc(&links.story_feed(id, Format::Rss))
    ));
    out.push_str("</body>\n</html>\n");
    out
}
