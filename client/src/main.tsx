import { render } from 'solid-js/web';

render(() => <p>LLM Gateway</p>, document.getElementById('root')!);
