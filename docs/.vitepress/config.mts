import { slug } from 'github-slugger'
import { defineConfig } from 'vitepress'
import { packages } from '../scripts/packages.mjs'

// Anchors as GitHub makes them, so that a package README's `#anchor` links work on GitHub and here.
const slugify = (text: string) => slug(text)

export default defineConfig({
  title: 'Shardwise',
  description: 'Composable middy middlewares for AWS Lambda consumers of Kinesis Data Streams',
  srcDir: 'site',
  outDir: 'dist',
  cacheDir: 'node_modules/.vitepress-cache',
  cleanUrls: true,
  lastUpdated: false,
  head: [['link', { rel: 'icon', type: 'image/svg+xml', href: '/favicon.svg' }]],
  markdown: { anchor: { slugify } },
  // The local search index and the API reference make large chunks; nothing is served from a CDN.
  vite: { build: { chunkSizeWarningLimit: 4096 } },
  themeConfig: {
    search: { provider: 'local' },
    nav: [
      { text: 'Guide', link: '/getting-started' },
      { text: 'Concepts', link: '/concepts' },
      { text: 'Packages', link: `/packages/${packages[0]?.dir}` },
      { text: 'API', link: '/api/' },
    ],
    sidebar: [
      {
        text: 'Start',
        items: [
          { text: 'Getting started', link: '/getting-started' },
          { text: 'Concepts', link: '/concepts' },
        ],
      },
      {
        text: 'Guides',
        items: [
          { text: 'Deploy', link: '/guides/deploy' },
          { text: 'Operate', link: '/guides/operate' },
          { text: 'Test your handler', link: '/guides/testing' },
          { text: 'Migrate', link: '/guides/migrate' },
          { text: 'KPL producers', link: '/guides/kpl' },
          { text: 'Avro and schema registries', link: '/guides/avro' },
          { text: 'CloudWatch Logs subscriptions', link: '/guides/cloudwatch-logs' },
        ],
      },
      {
        text: 'Packages',
        items: packages.map((p) => ({ text: p.name, link: `/packages/${p.dir}` })),
      },
      {
        text: 'Reference',
        items: [
          { text: 'API', link: '/api/' },
          { text: 'Bad input, catalogued', link: '/bad-input' },
          { text: 'Benchmarks', link: '/benchmarks' },
        ],
      },
    ],
  },
})
