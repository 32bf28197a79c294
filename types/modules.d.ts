// Text imports (`import sql from './x.sql' with { type: 'text' }`) embed files in the executable.
declare module '*.sql' {
  const text: string;
  export default text;
}
declare module '*.html' {
  const text: string;
  export default text;
}
