<?xml version="1.0" encoding="utf-8"?>
<!-- Shows an RSS 2.0 or Atom 1.0 feed from clipfeed as a readable page in a browser. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom" exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="utf-8" doctype-system="about:legacy-compat"/>
  <xsl:template match="/">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <title><xsl:value-of select="rss/channel/title | atom:feed/atom:title"/></title>
      </head>
      <body>
        <h1><xsl:value-of select="rss/channel/title | atom:feed/atom:title"/></h1>
        <ul>
          <xsl:for-each select="rss/channel/item">
            <li><a href="{link}"><xsl:value-of select="title"/></a></li>
          </xsl:for-each>
          <xsl:for-each select="atom:feed/atom:entry">
            <li><a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a></li>
          </xsl:for-each>
        </ul>
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
