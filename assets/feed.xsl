<?xml version="1.0" encoding="utf-8"?>
<!--
  Shows an RSS 2.0 or Atom 1.0 feed from clipfeed as a readable page in a browser.

  XSLT 1.0 only, no script: browsers run it on the document the feed links with
  <?xml-stylesheet?>. Styles are inline (a <style> element), so the page works under a policy
  of "default-src 'none'; style-src 'unsafe-inline'". Every value is written with value-of or an
  attribute value template, so the processor escapes it; nothing uses disable-output-escaping.
  The output has no id attributes.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    xmlns:content="http://purl.org/rss/1.0/modules/content/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:media="http://search.yahoo.com/mrss/"
    xmlns:fh="http://purl.org/syndication/history/1.0"
    exclude-result-prefixes="atom content dc media fh">
  <xsl:output method="html" encoding="utf-8" doctype-system="about:legacy-compat" indent="no"/>
  <xsl:strip-space elements="*"/>

  <!-- The feed element: an RSS channel or an Atom feed. -->
  <xsl:variable name="feed" select="/rss/channel | /atom:feed"/>
  <!-- Feed-level links: atom:link in an RSS channel, link in an Atom feed. -->
  <xsl:variable name="links" select="$feed/atom:link"/>
  <xsl:variable name="items" select="$feed/item | $feed/atom:entry"/>
  <xsl:variable name="is-archive" select="boolean($feed/fh:archive)"/>

  <xsl:template match="/">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="referrer" content="no-referrer"/>
        <title><xsl:value-of select="$feed/title | $feed/atom:title"/></title>
        <style>
:root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--line:#d8dee4;--link:#0645ad;--box:#eef4fb;--box-line:#b6cde8;--chip:#f1f3f5}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;--link:#6cb6ff;--box:#14243a;--box-line:#2f4a6d;--chip:#262c36}}
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:var(--fg)}
a{color:var(--link)}
header.feed h1{font-size:1.7rem;line-height:1.25;margin:.25rem 0 .5rem}
.kind{font-size:.8rem;letter-spacing:.06em;text-transform:uppercase;color:var(--muted);margin:0}
.muted{color:var(--muted)}
.description{margin:.25rem 0 1rem}
.about{background:var(--box);border:1px solid var(--box-line);border-radius:.5rem;padding:.75rem 1rem;margin:1rem 0 1.5rem}
.about p{margin:.25rem 0}
code.url{display:block;user-select:all;-webkit-user-select:all;word-break:break-all;font-size:.9rem;background:Canvas;border:1px solid var(--line);border-radius:.3rem;padding:.35rem .5rem;margin-top:.4rem}
nav.pages{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0;font-size:.95rem}
ol.items{list-style:none;margin:0;padding:0;border-top:1px solid var(--line)}
li.item{padding:1rem 0;border-bottom:1px solid var(--line);overflow:hidden}
li.item h2{font-size:1.15rem;line-height:1.3;margin:0 0 .25rem}
li.item h2 a{text-decoration:none}
li.item h2 a:hover{text-decoration:underline}
.meta{font-size:.875rem;color:var(--muted);margin:0 0 .4rem}
.summary{margin:.25rem 0 .5rem;overflow-wrap:anywhere}
img.thumb{float:right;width:9rem;max-width:35%;height:6rem;object-fit:cover;margin:.2rem 0 .5rem 1rem;background:var(--chip);border:1px solid var(--line);border-radius:.3rem}
ul.topics{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.35rem}
ul.topics li{font-size:.8rem;background:var(--chip);border:1px solid var(--line);border-radius:1rem;padding:0 .55rem}
footer{margin:2rem 0;font-size:.85rem;color:var(--muted)}
        </style>
      </head>
      <body>
        <header class="feed">
          <p class="kind">
            <xsl:choose>
              <xsl:when test="/rss">RSS feed</xsl:when>
              <xsl:otherwise>Atom feed</xsl:otherwise>
            </xsl:choose>
            <xsl:if test="$is-archive"> · archive page</xsl:if>
          </p>
          <h1><xsl:value-of select="$feed/title | $feed/atom:title"/></h1>
          <xsl:variable name="description" select="normalize-space($feed/description | $feed/atom:subtitle)"/>
          <xsl:if test="$description != ''">
            <p class="description"><xsl:value-of select="$description"/></p>
          </xsl:if>
        </header>

        <xsl:call-template name="subscribe"/>
        <xsl:call-template name="pages"/>

        <main>
          <xsl:choose>
            <xsl:when test="$items">
              <ol class="items">
                <xsl:apply-templates select="$items"/>
              </ol>
            </xsl:when>
            <xsl:otherwise>
              <p class="muted">No clippings in this feed yet.</p>
            </xsl:otherwise>
          </xsl:choose>
        </main>

        <xsl:if test="count($items) &gt; 4">
          <xsl:call-template name="pages"/>
        </xsl:if>

        <footer>
          <xsl:variable name="home" select="($feed/link | $links[@rel='alternate']/@href)[1]"/>
          <xsl:if test="starts-with($home, 'http://') or starts-with($home, 'https://')">
            <a href="{$home}">All feeds</a>
            <xsl:text> · </xsl:text>
          </xsl:if>
          <xsl:value-of select="count($items)"/>
          <xsl:choose>
            <xsl:when test="count($items) = 1"> clipping</xsl:when>
            <xsl:otherwise> clippings</xsl:otherwise>
          </xsl:choose>
          <xsl:for-each select="($feed/lastBuildDate | $feed/atom:updated)[1]">
            <xsl:text> · updated </xsl:text>
            <xsl:choose>
              <xsl:when test="self::atom:updated">
                <xsl:call-template name="iso-date"><xsl:with-param name="d" select="string(.)"/></xsl:call-template>
              </xsl:when>
              <xsl:otherwise><xsl:value-of select="."/></xsl:otherwise>
            </xsl:choose>
          </xsl:for-each>
        </footer>
      </body>
    </html>
  </xsl:template>

  <!-- What a feed is and the address to copy. An archive page is a fixed slice of the feed's
       history, so the address to subscribe to is the current document's, not its own. -->
  <xsl:template name="subscribe">
    <xsl:variable name="current" select="$links[@rel='current']/@href"/>
    <xsl:variable name="self" select="$links[@rel='self']/@href"/>
    <section class="about">
      <xsl:choose>
        <xsl:when test="$is-archive and $current">
          <p><strong>This is an archive page of a feed.</strong> To subscribe, copy the address of the
            current feed into your feed reader:</p>
          <code class="url"><xsl:value-of select="$current"/></code>
        </xsl:when>
        <xsl:otherwise>
          <p><strong>This is a feed.</strong> Copy its address into your feed reader to subscribe;
            new clippings show up there as they are added.</p>
          <xsl:if test="$self">
            <code class="url"><xsl:value-of select="$self"/></code>
          </xsl:if>
        </xsl:otherwise>
      </xsl:choose>
    </section>
  </xsl:template>

  <!-- RFC 5005 archive navigation, when the document has any. -->
  <xsl:template name="pages">
    <xsl:variable name="older" select="$links[@rel='prev-archive']/@href"/>
    <xsl:variable name="newer" select="$links[@rel='next-archive']/@href"/>
    <xsl:variable name="latest" select="$links[@rel='current']/@href"/>
    <xsl:if test="$older or $newer or $latest">
      <nav class="pages" aria-label="Feed history">
        <xsl:if test="$newer">
          <a href="{$newer}" rel="next">← Newer</a>
        </xsl:if>
        <xsl:if test="$latest">
          <a href="{$latest}">Latest</a>
        </xsl:if>
        <xsl:if test="$older">
          <a href="{$older}" rel="prev">Older →</a>
        </xsl:if>
      </nav>
    </xsl:if>
  </xsl:template>

  <!-- One RSS item. -->
  <xsl:template match="item">
    <li class="item">
      <xsl:call-template name="thumbnail">
        <xsl:with-param name="src" select="enclosure[starts-with(@type, 'image/')][1]/@url"/>
      </xsl:call-template>
      <h2>
        <xsl:call-template name="title-link">
          <xsl:with-param name="href" select="link"/>
          <xsl:with-param name="title" select="title"/>
        </xsl:call-template>
      </h2>
      <p class="meta">
        <xsl:if test="pubDate">
          <span class="date"><xsl:value-of select="pubDate"/></span>
        </xsl:if>
        <xsl:if test="dc:creator or source">
          <xsl:if test="pubDate"><xsl:text> · </xsl:text></xsl:if>
          <span class="provider">
            <xsl:choose>
              <xsl:when test="dc:creator"><xsl:value-of select="dc:creator"/></xsl:when>
              <xsl:otherwise><xsl:value-of select="source"/></xsl:otherwise>
            </xsl:choose>
          </span>
        </xsl:if>
      </p>
      <xsl:if test="normalize-space(description) != ''">
        <!-- clipfeed's description is plain text with &, < and > escaped for HTML readers:
             undo exactly that, as text (which the processor escapes again). -->
        <p class="summary">
          <xsl:call-template name="unescape"><xsl:with-param name="s" select="string(description)"/></xsl:call-template>
        </p>
      </xsl:if>
      <xsl:call-template name="topics"><xsl:with-param name="names" select="category"/></xsl:call-template>
    </li>
  </xsl:template>

  <!-- One Atom entry. -->
  <xsl:template match="atom:entry">
    <li class="item">
      <xsl:call-template name="thumbnail">
        <xsl:with-param name="src" select="atom:link[@rel='enclosure'][starts-with(@type, 'image/')][1]/@href"/>
      </xsl:call-template>
      <h2>
        <xsl:call-template name="title-link">
          <xsl:with-param name="href" select="(atom:link[@rel='alternate'][1] | atom:link[not(@rel)][not(../atom:link[@rel='alternate'])][1])/@href"/>
          <xsl:with-param name="title" select="atom:title"/>
        </xsl:call-template>
      </h2>
      <p class="meta">
        <!-- Published, else updated (a union would take whichever comes first in the entry). -->
        <xsl:choose>
          <xsl:when test="atom:published">
            <xsl:call-template name="iso-date"><xsl:with-param name="d" select="string(atom:published)"/></xsl:call-template>
          </xsl:when>
          <xsl:when test="atom:updated">
            <xsl:call-template name="iso-date"><xsl:with-param name="d" select="string(atom:updated)"/></xsl:call-template>
          </xsl:when>
        </xsl:choose>
        <xsl:if test="atom:author/atom:name">
          <xsl:if test="atom:published or atom:updated"><xsl:text> · </xsl:text></xsl:if>
          <span class="provider"><xsl:value-of select="atom:author/atom:name"/></span>
        </xsl:if>
      </p>
      <xsl:if test="normalize-space(atom:summary) != ''">
        <p class="summary"><xsl:value-of select="atom:summary"/></p>
      </xsl:if>
      <xsl:call-template name="topics"><xsl:with-param name="names" select="atom:category"/></xsl:call-template>
    </li>
  </xsl:template>

  <!-- The item's title, linked when the link is a web address. -->
  <xsl:template name="title-link">
    <xsl:param name="href"/>
    <xsl:param name="title"/>
    <xsl:variable name="text">
      <xsl:choose>
        <xsl:when test="normalize-space($title) != ''"><xsl:value-of select="$title"/></xsl:when>
        <xsl:otherwise>(untitled)</xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <xsl:choose>
      <xsl:when test="starts-with($href, 'http://') or starts-with($href, 'https://')">
        <a href="{$href}"><xsl:value-of select="$text"/></a>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$text"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template name="thumbnail">
    <xsl:param name="src"/>
    <xsl:if test="starts-with($src, 'http://') or starts-with($src, 'https://')">
      <img class="thumb" src="{$src}" alt="" loading="lazy" decoding="async" referrerpolicy="no-referrer"/>
    </xsl:if>
  </xsl:template>

  <!-- Topic names: RSS category text, Atom category label (else term). -->
  <xsl:template name="topics">
    <xsl:param name="names"/>
    <xsl:if test="$names">
      <ul class="topics" aria-label="Topics">
        <xsl:for-each select="$names">
          <li>
            <xsl:choose>
              <xsl:when test="self::atom:category and normalize-space(@label) != ''"><xsl:value-of select="@label"/></xsl:when>
              <xsl:when test="self::atom:category"><xsl:value-of select="@term"/></xsl:when>
              <xsl:otherwise><xsl:value-of select="."/></xsl:otherwise>
            </xsl:choose>
          </li>
        </xsl:for-each>
      </ul>
    </xsl:if>
  </xsl:template>

  <!-- An RFC 3339 date as "2024-03-01 10:00 UTC" (the offset kept when it is not UTC), in a
       <time> element that carries the exact value. -->
  <xsl:template name="iso-date">
    <xsl:param name="d"/>
    <time datetime="{$d}">
      <xsl:choose>
        <xsl:when test="string-length($d) &gt;= 16 and substring($d, 11, 1) = 'T'">
          <xsl:value-of select="concat(substring($d, 1, 10), ' ', substring($d, 12, 5))"/>
          <xsl:choose>
            <xsl:when test="substring($d, string-length($d)) = 'Z' or substring($d, string-length($d) - 5) = '+00:00'">
              <xsl:text> UTC</xsl:text>
            </xsl:when>
            <xsl:otherwise>
              <xsl:value-of select="concat(' ', substring($d, string-length($d) - 5))"/>
            </xsl:otherwise>
          </xsl:choose>
        </xsl:when>
        <xsl:otherwise><xsl:value-of select="$d"/></xsl:otherwise>
      </xsl:choose>
    </time>
  </xsl:template>

  <!-- Decodes &amp; &lt; &gt; &quot; &#39; in one pass (so "&amp;lt;" gives "&lt;"), as text. -->
  <xsl:template name="unescape">
    <xsl:param name="s"/>
    <xsl:choose>
      <xsl:when test="contains($s, '&amp;')">
        <xsl:value-of select="substring-before($s, '&amp;')"/>
        <xsl:variable name="rest" select="substring-after($s, '&amp;')"/>
        <xsl:variable name="entity" select="substring-before($rest, ';')"/>
        <xsl:choose>
          <xsl:when test="$entity = 'amp'">&amp;</xsl:when>
          <xsl:when test="$entity = 'lt'">&lt;</xsl:when>
          <xsl:when test="$entity = 'gt'">&gt;</xsl:when>
          <xsl:when test="$entity = 'quot'">"</xsl:when>
          <xsl:when test="$entity = '#39'">'</xsl:when>
          <xsl:otherwise>&amp;</xsl:otherwise>
        </xsl:choose>
        <xsl:call-template name="unescape">
          <xsl:with-param name="s">
            <xsl:choose>
              <xsl:when test="$entity = 'amp' or $entity = 'lt' or $entity = 'gt' or $entity = 'quot' or $entity = '#39'">
                <xsl:value-of select="substring-after($rest, ';')"/>
              </xsl:when>
              <xsl:otherwise><xsl:value-of select="$rest"/></xsl:otherwise>
            </xsl:choose>
          </xsl:with-param>
        </xsl:call-template>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$s"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
